"""Deployments (native `/deployments`)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BeforeValidator, Field

from ._common import ApiModel, OpenStatus, RequestModel

__all__ = [
    "DeployableModel",
    "DeployableModelPage",
    "Deployment",
    "DeploymentCreate",
    "DeploymentPage",
    "DeploymentStatus",
    "PtuCapacity",
]


class DeploymentStatus(OpenStatus):
    PENDING: Final = "PENDING"
    DEPLOYING: Final = "DEPLOYING"
    UPDATING: Final = "UPDATING"
    RUNNING: Final = "RUNNING"
    STOPPED: Final = "STOPPED"
    DELETING: Final = "DELETING"
    FAILED: Final = "FAILED"
    # PTU deployments wait for the prepaid bill before deploying; more WAIT_* values may appear.
    WAIT_PRE_PAID_BILLING_TO_DEPLOYING: Final = "WAIT_PRE_PAID_BILLING_TO_DEPLOYING"
    # Settled states: nothing will change without a new request.
    TERMINAL = frozenset({RUNNING, STOPPED, FAILED})


class PtuCapacity(ApiModel):
    input_tpm: int
    output_tpm: int


class DeploymentCreate(RequestModel):
    """`POST /deployments`. A PTU deployment takes no `suffix`: the backend names it (the create-deployment
    page's PTU sample sends none; service-contract.md#C21). Sending one anyway is left to the service."""

    model_name: str
    capacity: int | None = None
    plan: str | None = None  # mu | cu | ptu | lora
    deploy_spec: str | None = None
    ptu_capacity: PtuCapacity | None = None
    suffix: str | None = Field(default=None, max_length=8)
    name: str | None = None
    enable_thinking: bool | None = None
    max_context_length: int | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None


class Deployment(ApiModel):
    """The deployment object. `deployed_model` is chosen by the service (for PTU without any suffix of ours)."""

    deployed_model: str
    status: Annotated[str, BeforeValidator(DeploymentStatus.normalize)]
    model_name: str | None = None
    base_model: str | None = None
    base_capacity: int | None = None
    capacity: int | None = None
    ready_capacity: int | None = None
    plan: str | None = None
    charge_type: str | None = None
    workspace_id: str | None = None
    gmt_create: str | None = None
    gmt_modified: str | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    ptu_capacity: PtuCapacity | None = None
    model_unit_spec: str | None = None
    enable_thinking: bool | None = None
    max_context_length: int | None = None

    @property
    def is_terminal(self) -> bool:
        return DeploymentStatus.is_terminal(self.status)


class DeploymentPage(ApiModel):
    page_no: int = 1
    page_size: int = 50
    total: int = 0
    deployments: list[Deployment] = Field(default_factory=list)


class DeployableModel(ApiModel):
    model_name: str
    base_capacity: int | None = None


class DeployableModelPage(ApiModel):
    page_no: int = 1
    page_size: int = 50
    total: int = 0
    models: list[DeployableModel] = Field(default_factory=list)
