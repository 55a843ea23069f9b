"""The import kind: a marker (or REST body) naming weights in OSS; its first entry is `job-succeeded`, and the
delivery leg imports, then deploys."""

from __future__ import annotations

from bailian_flow.pipeline.delivery import spec as delivery
from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener

SPEC = KindSpec(
    name="import",
    uses=frozenset({"import"}),
    facts=delivery.FACTS,
    acts=delivery.ACTS,
    handled_by={"on_success": delivery.ON_SUCCESS},
    follows=delivery.FOLLOWS,
    settled=delivery.SETTLED,
    reannounce=delivery.REANNOUNCE,
    triggering=delivery.TRIGGERING,
    request_field="import",
    hooks={"start_request": "kinds.import_only.marker:start_request"},
    openers=(
        Opener(
            prefix_setting="imports_prefix",
            suffix=".import.yaml",
            open="kinds.import_only.marker:open_from_event",
            chained=True,
        ),
    ),
)
