"""The deploy kind: `deployments/**.deploy.yaml` or `POST /runs {"deploy": {...}}` → deploying → RUNNING → done;
scaled on request, torn down by its TTL or on request (the delivery leg's lifecycle)."""

from __future__ import annotations

from bailian_flow.pipeline.delivery import spec as delivery
from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener

SPEC = KindSpec(
    name="deploy",
    facts={
        "requested": "kinds.deployment.stages:step_requested",
        "deployment-pending": delivery.FACTS["deployment-pending"],
    },
    acts={"deploying": "kinds.deployment.stages:act_deploy"},
    handled_by={"on_upload": frozenset({"requested", "deploying"})},
    follows={"deployment-pending": delivery.FOLLOWS["deployment-pending"]},
    reannounce={"requested": "requested", "deploying": "requested"},
    triggering=frozenset({"requested"}),
    state_model="kinds.deployment.state:DeployState",
    # A base-model deployment is found by what the service echoes, not by a suffix (a PTU one has none).
    resources={"base-deployment": 2},
    openers=(
        Opener(
            prefix_setting="deployments_prefix",
            suffix=".deploy.yaml",
            open="kinds.deployment.marker:open_from_event",
            chained=True,
        ),
    ),
    request_field="deploy",
    retry_from="requested",
    hooks={
        "start_request": "kinds.deployment.marker:start_request",
        "settings_for": "kinds.deployment.marker:settings_for",
        "stop": "kinds.deployment.stages:stop",
        "find": "kinds.deployment.stages:find",
        "undo": "kinds.deployment.stages:undo",
        "scale": "kinds.deployment.stages:scale",
    },
)
