"""What a deploy run adds to a run's state: the create body it sends, and how its deployment is recognised."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bailian_flow.pipeline.protocol.state import RunState


class DeployState(RunState):
    kind: str = "deploy"
    # The marker's (or request's) `deploy` mapping, as `validate._deploy.parse_deploy_marker` accepted it.
    deploy: dict[str, Any] = Field(default_factory=dict)
    # The display name sent with the create: ours (`bf-<run>-<attempt>`) unless the marker names one.
    deploy_name: str | None = None
    # A PTU attempt's look before its first create: the model's deployments that existed then (service-contract
    # C49: no name of ours is echoed, so after a lost answer any other one may be this attempt's).
    ptu_before: list[str] | None = None
    ptu_before_attempt: int = 0
    # The capacity the deployment was last scaled to (`capacity` or `ptu_capacity`), when it was.
    scaled_to: dict[str, Any] | None = None

    def owns(self, resource: str, resource_id: str) -> bool:
        if resource == "base-deployment":
            return resource_id == self.deployed_model
        return super().owns(resource, resource_id)
