"""requested → deploying → deployment-pending → done: deploy a base model exactly once, follow it to RUNNING.

Exactly once, even where the service names the deployment itself: a PTU deployment takes no suffix
(service-contract.md#C21; "Create deployment", https://help.aliyun.com/en/model-studio/create-deployment-api, PTU
request example), so ours is recognised by what the service echoes: the model and the display name the create sent,
`bf-<run>-<attempt>` unless the marker names one. Where no name is echoed (the documented object has none,
service-contract.md#C49), a create whose answer was lost is never repeated nor guessed: what appeared since the
attempt's first look fails the run, named. Other plans carry a suffix (the marker's, or one derived from the
run and attempt, reconcile.deploy_suffix), which Bailian keeps unique (service-contract.md#C23).

Following to RUNNING, the TTL and teardown are the delivery leg's (`delivery/stages.poll_deployment`,
`delivery/lifecycle`). Scaling is `POST /runs/{id}/scale` (the `scale` hook): `capacity`, or `ptu_capacity` for PTU
("Scale a deployment", https://help.aliyun.com/zh/model-studio/scale-deployment-api, 请求参数).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from bailian_flow.client.errors import APIStatusError, NotFoundError
from bailian_flow.client.models import Deployment
from bailian_flow.pipeline.protocol import reconcile
from bailian_flow.pipeline.protocol.acting import api_error, create_or_find, server_fault
from bailian_flow.pipeline.protocol.cleanup import Kind, Made, note_deployment_owner, undeploy
from bailian_flow.pipeline.protocol.kinds import HookRefused
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.settings import SettingsError
from bailian_flow.pipeline.protocol.state import RunError, RunState
from bailian_flow.pipeline.protocol.transitions import Current, Outcome, claim, commit, fail, record

from .state import DeployState

RESOURCE = "base-deployment"


def _name(state: RunState) -> str:
    given = state.deploy.get("name") if isinstance(state, DeployState) else None
    return str(given) if given else f"bf-{state.run_id}-{state.attempt}"


def _plan(state: RunState) -> str | None:
    """The plan the create sends: the deploy mapping's (None: the capacity-only form of image and video models)."""
    plan = state.deploy.get("plan") if isinstance(state, DeployState) else state.settings.on_success.plan
    return str(plan) if plan else None


def _suffix(state: RunState) -> str | None:
    """The suffix sent: none for PTU (the service names it), the marker's, or one of this run and attempt."""
    if _plan(state) == "ptu":
        return None
    given = state.deploy.get("suffix") if isinstance(state, DeployState) else None
    return str(given) if given else reconcile.deploy_suffix(state.run_id, state.attempt)


def _ours(state: RunState, deployment: Deployment) -> bool:
    """Whether a listed deployment is the one this run's attempt made, by what the service echoes."""
    if deployment.model_name not in (None, state.settings.model):
        return False
    suffix = _suffix(state)
    if suffix is not None:
        return deployment.deployed_model.endswith(f"-{suffix}")
    echoed = (deployment.model_extra or {}).get("name")
    return deployment.model_name == state.settings.model and echoed == _name(state)


class OutcomeUnknown(Exception):
    """A PTU create may have been processed, and what appeared since cannot be told ours (no name echoed)."""

    def __init__(self, candidates: list[str]) -> None:
        super().__init__(", ".join(candidates))
        self.candidates = candidates


def _maybe_ours(state: RunState, deployment: Deployment) -> bool:
    """A PTU deployment of the model that answers no name and was not there before this attempt's first create."""
    before = state.ptu_before if isinstance(state, DeployState) else None
    return (
        _plan(state) == "ptu"
        and "name" not in (deployment.model_extra or {})
        and deployment.model_name == state.settings.model
        and deployment.deployed_model not in (before or ())
    )


async def _find(flow: Flow, state: RunState) -> Deployment | None:
    """This attempt's deployment, if a create of it was processed. A marker's own name is the same in every
    attempt: an earlier attempt's deployment that failed or is going away is not adopted. Where the service echoes
    no name (C49), a PTU deployment that appeared since the attempt's first look may be ours or anybody's:
    OutcomeUnknown, never a guess."""
    unsure: list[str] = []
    async for deployment in flow.client.deployments.list():
        if deployment.status in ("FAILED", "DELETING", "STOPPED"):
            continue
        if _ours(state, deployment):
            return deployment
        if _maybe_ours(state, deployment):
            unsure.append(deployment.deployed_model)
    if unsure:
        raise OutcomeUnknown(unsure)
    return None


async def _ptu_look(flow: Flow, state: RunState) -> dict[str, Any]:
    """What a PTU attempt records before its first create: the model's deployments already there (once an attempt)."""
    if _plan(state) != "ptu" or not isinstance(state, DeployState) or state.ptu_before_attempt == state.attempt:
        return {}
    model = state.settings.model
    seen = [item.deployed_model async for item in flow.client.deployments.list() if item.model_name == model]
    return {"ptu_before": seen, "ptu_before_attempt": state.attempt}


async def step_requested(flow: Flow, current: Current) -> Outcome:
    state = current.state
    name, suffix = _name(state), _suffix(state)
    changed = f"deploying {state.settings.model} on plan {_plan(state) or '(capacity only)'} as {name}"
    look = await _ptu_look(flow, state)
    claimed = await claim(flow, current, "deploying", changed, deploy_name=name, deploy_suffix=suffix, **look)
    if claimed is not None:
        await act_deploy(flow, claimed)
    return "again"


async def act_deploy(flow: Flow, current: Current) -> None:
    state = current.state
    name, suffix = _name(state), _suffix(state)
    if suffix is not None:
        await note_deployment_owner(flow, suffix, state.run_id, state.attempt)
    try:
        deployment = await _create_or_find(flow, current, name, suffix)
    except OutcomeUnknown as exc:
        reason = (
            f"the answer to a PTU create of {state.settings.model} was lost and the service echoes no name: "
            f"{', '.join(exc.candidates)} appeared since, which may be this run's; nothing was adopted or deleted "
            "(delete it by hand if it is)"
        )
        await fail(flow, current, RunError(reason=reason, code="DeployOutcomeUnknown", retryable=True))
        return
    if deployment is not None:
        await record(
            flow,
            current,
            [Made(RESOURCE, deployment.deployed_model)],
            "deployment-pending",
            f"deployment {deployment.deployed_model} {deployment.status}",
            deployed_model=deployment.deployed_model,
            deployment_status=deployment.status,
        )


async def _create_or_find(flow: Flow, current: Current, name: str, suffix: str | None) -> Deployment | None:
    state = current.state
    plan = state.settings.on_success
    return await create_or_find(
        flow,
        current,
        create=lambda: flow.client.deployments.create(
            model_name=state.settings.model,
            plan=_plan(state),
            # PTU is sized by ptu_capacity alone; the other plans by capacity (a multiple of base_capacity).
            capacity=None if _plan(state) == "ptu" else plan.capacity,
            deploy_spec=plan.deploy_spec,
            ptu_capacity=plan.ptu_capacity.model_dump() if plan.ptu_capacity else None,
            suffix=suffix,
            name=name,
        ),
        # One name (and, but for PTU, one suffix) per attempt: every claim of this attempt finds the same one.
        find=lambda _gen: _find(flow, state),
        doing=f"deploying {state.settings.model}",
        # A 409 on a suffix of this run alone most likely means an earlier try made it: the look-up tells.
        conflict_may_be_ours=suffix is not None and not (isinstance(state, DeployState) and state.deploy.get("suffix")),
    )


# -- hooks: cancel's sweep, compensation, scale ------------------------------------------------------------------


async def stop(flow: Flow, state: RunState, kinds: tuple[Kind, ...]) -> tuple[Kind, ...]:
    """Cancel sweeps the run's deployment as this kind's own resource (found by its echo, not a suffix)."""
    if "deployment" not in kinds:
        return kinds
    return (*(kind for kind in kinds if kind != "deployment"), RESOURCE)


async def find(flow: Flow, state: RunState, kinds: Collection[Kind]) -> list[Made]:
    """Every deployment of the run: the recorded one, and each attempt's by its echo (a create whose answer was
    lost has no record)."""
    if RESOURCE not in kinds:
        return []
    found: list[Made] = []
    attempts = [state.model_copy(update={"attempt": attempt}) for attempt in range(1, state.attempt + 1)]
    async for deployment in flow.client.deployments.list():
        if any(_ours(attempt, deployment) for attempt in attempts):
            found.append(Made(RESOURCE, deployment.deployed_model))
    if state.deployed_model and not state.undeployed_at:
        found.append(Made(RESOURCE, state.deployed_model))
    return list(dict.fromkeys(found))


async def undo(flow: Flow, made: Made) -> str:
    await undeploy(flow, made.id)
    return f"deleted deployment {made.id}"


def _scale_body(state: RunState, body: dict[str, Any]) -> dict[str, Any]:
    """`{"capacity": n}`, or `{"ptu_capacity": {...}}` for PTU; anything else is the caller's to fix (400)."""
    ptu = _plan(state) == "ptu"
    wanted = "ptu_capacity" if ptu else "capacity"
    unknown = sorted(set(body) - {wanted})
    if unknown or wanted not in body:
        field = unknown[0] if unknown else wanted
        reason = f"a {_plan(state) or 'capacity-only'} deployment is scaled by {wanted} alone"
        raise SettingsError(reason, object_key=None, field=field)
    value = body[wanted]
    if not ptu:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 1000:
            raise SettingsError("capacity must be a whole number from 1 to 999", object_key=None, field="capacity")
        return {"capacity": value}
    keys = {"input_tpm", "output_tpm"}
    if not isinstance(value, dict) or set(value) != keys:
        raise SettingsError("ptu_capacity needs input_tpm and output_tpm", object_key=None, field="ptu_capacity")
    for key in sorted(keys):
        number = value[key]
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 10**9:
            raise SettingsError(
                "a positive whole number of tokens per minute", object_key=None, field=f"ptu_capacity.{key}"
            )
    return {"ptu_capacity": {key: value[key] for key in sorted(keys)}}


async def scale(flow: Flow, current: Current, body: dict[str, Any]) -> RunState | None:
    """Scale the run's RUNNING deployment (a repeat of the same size repeats harmlessly); None: lost a race."""
    state = current.state
    wanted = _scale_body(state, body)
    if state.stage != "done" or not state.deployed_model or state.undeployed_at:
        raise HookRefused(
            f"only a DONE run's live deployment can be scaled; {state.run_id} is {state.public()['stage']}"
        )
    try:
        answer = await flow.client.deployments.scale(state.deployed_model, **wanted)
    except NotFoundError:
        raise HookRefused(f"deployment {state.deployed_model} no longer exists") from None
    except APIStatusError as exc:
        if server_fault(exc):
            raise
        raise HookRefused(api_error(exc, f"scaling {state.deployed_model}").reason) from None
    size = ", ".join(f"{key} {value}" for key, value in wanted.items())
    return await commit(
        flow,
        current,
        "done",
        f"scaled {state.deployed_model} to {size} ({answer.status})",
        deployment_status=answer.status,
        scaled_to=wanted,
    )
