"""Native deployments API: ``/api/v1/deployments`` (bailian-api.md section 2)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .catalogue import DEPLOYABLE_BASE_MODELS, WAN_I2V_MODELS, ModelInfo, catalogue
from .common import ApiError, format_iso_centis, hex4, json_object, ok, paged, workspace_id
from .state import STATE_KEY, EmulatorState
from .timeline import Phase, Timeline

PREFIX = "/api/v1/deployments"
PENDING_SECONDS = 20.0
UPDATING_SECONDS = 20.0
DELETING_SECONDS = 10.0
MAX_CAPACITY = 1000
PLANS = frozenset({"mu", "cu", "ptu", "lora"})
SUFFIX_PATTERN = re.compile(r"^[a-z0-9]{1,8}$")
# A phase status that means the deployment no longer exists.
GONE = "GONE"
# What a delete is allowed from when the delete_requires_stopped switch is on (behaviour.py): no stop operation is
# documented, so through the API a RUNNING deployment cannot be deleted at all then; the control API's
# `POST /_emulator/deployments/{name}/stop` stands for a stop in the console (a script can also end one STOPPED).
DELETABLE_WHEN_STRICT = frozenset({"STOPPED", "FAILED"})


@dataclass
class Deployment:
    deployed_model: str
    model_name: str
    base_model: str
    base_capacity: int
    suffix: str | None
    created: float
    timeline: Timeline
    workspace_id: str
    options: dict[str, Any] = field(default_factory=dict)

    def current(self, now: float) -> Phase:
        return self.timeline.current(now)

    def exists(self, now: float) -> bool:
        return self.current(now).status != GONE

    def to_output(self, now: float) -> dict[str, Any]:
        phase = self.current(now)
        capacity = int(phase.extra.get("capacity", 0))
        output: dict[str, Any] = {
            "deployed_model": self.deployed_model,
            "gmt_create": format_iso_centis(self.created),
            "gmt_modified": format_iso_centis(phase.start),
            "status": phase.status,
            "model_name": self.model_name,
            "base_model": self.base_model,
            "base_capacity": self.base_capacity,
            "capacity": capacity,
            "ready_capacity": int(phase.extra.get("ready_capacity", 0)),
            "workspace_id": self.workspace_id,
            "charge_type": "post_paid",
            "creator": "emulator",
            "modifier": "emulator",
            **self.options,
        }
        if self.suffix is not None:
            output["suffix"] = self.suffix
        return output


class DeploymentStore:
    def __init__(self) -> None:
        self.deployments: dict[str, Deployment] = {}

    def clear(self) -> None:
        self.deployments.clear()

    def live(self, now: float) -> list[Deployment]:
        self._forget_gone(now)
        return list(self.deployments.values())

    def get(self, deployed_model: str, now: float) -> Deployment:
        self._forget_gone(now)
        deployment = self.deployments.get(deployed_model)
        if deployment is None:
            raise ApiError(404, "NotFound", f"Deployed model: {deployed_model} not found!")
        return deployment

    def _forget_gone(self, now: float) -> None:
        for name in [name for name, item in self.deployments.items() if not item.exists(now)]:
            del self.deployments[name]


STORE_KEY = web.AppKey("bailian_flow.emulator.deployments", DeploymentStore)


def _store(request: web.Request) -> DeploymentStore:
    return request.app[STORE_KEY]


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def _capacity(raw: Any, base_capacity: int) -> int:
    valid = isinstance(raw, int) and not isinstance(raw, bool)
    if not valid or raw <= 0 or raw % base_capacity or raw >= MAX_CAPACITY:
        raise ApiError(
            400,
            "InvalidParameter",
            f"Invalid capacity ({raw}), capacity must be positive multiples of {base_capacity} "
            f"and less than {MAX_CAPACITY}!",
        )
    return int(raw)


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ApiError(400, "InvalidParameter", f"{key} must be a positive integer, got {value!r}.")
    return value


def _plan_options(body: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    plan = body.get("plan")
    if plan is not None:
        if not isinstance(plan, str) or plan.lower() not in PLANS:
            raise ApiError(400, "InvalidParameter", f"Invalid plan: {plan!r}; expected one of mu, cu, ptu, lora.")
        options["plan"] = plan.lower()
        if options["plan"] == "mu" and not body.get("deploy_spec"):
            raise ApiError(400, "InvalidParameter", "deploy_spec is required for the mu plan.")
        if options["plan"] == "ptu":
            ptu = body.get("ptu_capacity")
            if not isinstance(ptu, dict) or not {"input_tpm", "output_tpm"} <= ptu.keys():
                raise ApiError(
                    400, "InvalidParameter", "ptu_capacity with input_tpm and output_tpm is required for ptu."
                )
    for key in (
        "deploy_spec",
        "ptu_capacity",
        "name",
        "aigc_config",
        "enable_thinking",
        "max_context_length",
        "template_id",
    ):
        if body.get(key) is not None:
            options[key] = body[key]
    for key in ("rpm_limit", "tpm_limit"):
        value = _positive_int(body, key)
        if value is not None:
            options[key] = value
    return options


def _check_plan(info: ModelInfo, plan: str | None) -> None:
    """The plans the model may deploy on. PTU serves Bailian's own base models only (the deployment reference's
    PTU section; reference notes' Corrections); Wan LoRA outputs deploy with ``plan: lora`` as the Wan fine-tune
    guide deploys them ("视频生成模型微调 API 参考", 部署模型)."""
    allowed = DEPLOYABLE_BASE_MODELS.get(info.model_name)
    if allowed is not None:
        if plan not in allowed:
            forms = ", ".join(sorted(item for item in allowed if item)) or "capacity only, no plan"
            raise ApiError(400, "InvalidParameter", f"Model {info.model_name} does not support plan {plan}: {forms}.")
        return
    if plan == "ptu":
        raise ApiError(
            400,
            "InvalidParameter",
            f"Plan ptu is only available for Bailian base models; {info.model_name} is a custom model.",
        )
    if info.base_model in WAN_I2V_MODELS and plan != "lora":
        raise ApiError(400, "InvalidParameter", f"Model {info.model_name} deploys with plan lora only.")


def _deployed_name(model_name: str, workspace_id: str, suffix: str | None) -> str:
    # Deterministic, like "emo-35b3f106-sample01": a second deployment of the same model without a suffix
    # therefore collides with the first one.
    digest = hashlib.sha256(f"{workspace_id}/{model_name}".encode()).hexdigest()[:8]
    return f"{model_name}-{digest}" + (f"-{suffix}" if suffix else "")


async def list_models(request: web.Request) -> web.Response:
    models = sorted(catalogue(request.app).deployable().values(), key=lambda info: info.model_name)
    fields, listed = paged(request, models, 50, 200)
    items = [
        {"model_name": info.model_name, "base_model": info.base_model, "base_capacity": info.base_capacity}
        for info in listed
    ]
    return ok({**fields, "models": items})


async def create(request: web.Request) -> web.Response:
    state, store = _state(request), _store(request)
    body = await json_object(request)
    model_name = body.get("model_name")
    if not isinstance(model_name, str) or not model_name:
        raise ApiError(400, "InvalidParameter", "model_name is required.")
    info: ModelInfo | None = catalogue(request.app).deployable().get(model_name)
    if info is None:
        raise ApiError(404, "NotFound", f"Model: {model_name} not found!")
    capacity = _capacity(body.get("capacity", info.base_capacity), info.base_capacity)
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or not SUFFIX_PATTERN.match(suffix)):
        raise ApiError(400, "InvalidParameter", f"Invalid suffix {suffix!r}: 1-8 lowercase letters or digits.")
    options = _plan_options(body)
    if not state.behaviour.deployment_name_echoed:
        options.pop("name", None)  # taken, never answered (service-contract.md#C49)
    plan = options.get("plan")
    _check_plan(info, plan)
    now = state.clock.now()
    workspace = workspace_id(request)
    if plan == "ptu":
        # The backend names a PTU deployment; a suffix is ignored, or refused under the strict reading.
        if suffix is not None and state.behaviour.ptu_suffix_refused:
            raise ApiError(400, "InvalidParameter", "A ptu deployment takes no suffix; the service names it.")
        suffix = None
        deployed_model = f"{model_name}-ptu-{hex4()}{hex4()}"
        while deployed_model in store.deployments:
            deployed_model = f"{model_name}-ptu-{hex4()}{hex4()}"
    else:
        deployed_model = _deployed_name(model_name, workspace, suffix)
    live = store.live(now)
    if suffix is not None and any(item.suffix == suffix for item in live):
        raise ApiError(409, "Conflict", f"Suffix {suffix} already exists, please specify another suffix.")
    if deployed_model in store.deployments:
        raise ApiError(409, "Conflict", f"Deployed model {model_name} already exists, please specify a suffix.")

    failed = state.take_scripted_outcome("deployment")
    sizing = {"capacity": capacity, "ready_capacity": 0}
    final = {"capacity": capacity, "ready_capacity": 0 if failed else capacity}
    timeline = Timeline([Phase(now, "PENDING", sizing), Phase(now + PENDING_SECONDS, failed or "RUNNING", final)])
    deployment = Deployment(
        deployed_model=deployed_model,
        model_name=model_name,
        base_model=info.base_model,
        base_capacity=info.base_capacity,
        suffix=suffix,
        created=now,
        timeline=timeline,
        workspace_id=workspace,
        options=options,
    )
    store.deployments[deployed_model] = deployment
    state.count_created("deployments")
    return ok(deployment.to_output(now))


async def list_deployments(request: web.Request) -> web.Response:
    now = _state(request).clock.now()
    state = _state(request)
    live = [item for item in reversed(_store(request).live(now)) if state.listed(item.created)]
    fields, listed = paged(request, live, 50, 200)
    cap = state.behaviour.deployments_page_size_cap
    if cap is not None and fields["page_size"] > cap:
        # Answered, not refused: the page the service would plausibly give (see behaviour.py).
        start = (fields["page_no"] - 1) * cap
        fields["page_size"], listed = cap, live[start : start + cap]
    return ok({**fields, "deployments": [item.to_output(now) for item in listed]})


async def get_deployment(request: web.Request) -> web.Response:
    now = _state(request).clock.now()
    return ok(_store(request).get(request.match_info["deployed_model"], now).to_output(now))


async def scale(request: web.Request) -> web.Response:
    now = _state(request).clock.now()
    deployment = _store(request).get(request.match_info["deployed_model"], now)
    body = await json_object(request)
    phase = deployment.current(now)
    ptu = body.get("ptu_capacity")
    if deployment.options.get("plan") == "ptu" or ptu is not None:
        # A PTU deployment is scaled by ptu_capacity ("部署扩缩容", 请求参数: "plan": "ptu" 时).
        if deployment.options.get("plan") != "ptu":
            raise ApiError(400, "InvalidParameter", "ptu_capacity applies to ptu deployments only.")
        if not isinstance(ptu, dict) or not {"input_tpm", "output_tpm"} <= ptu.keys():
            raise ApiError(400, "InvalidParameter", "ptu_capacity with input_tpm and output_tpm is required for ptu.")
        capacity = int(phase.extra.get("capacity", 0))
        deployment.options["ptu_capacity"] = dict(ptu)
    else:
        capacity = _capacity(body.get("capacity"), deployment.base_capacity)
    if phase.status != "RUNNING":
        raise ApiError(
            400,
            "UnsupportedOperation",
            f"Deployment {deployment.deployed_model} is {phase.status}, not RUNNING.",
        )
    ready = int(phase.extra.get("ready_capacity", 0))
    deployment.timeline.cut_and_append(
        now,
        Phase(now, "UPDATING", {"capacity": capacity, "ready_capacity": ready}),
        Phase(now + UPDATING_SECONDS, "RUNNING", {"capacity": capacity, "ready_capacity": capacity}),
    )
    return ok(deployment.to_output(now))


async def update(request: web.Request) -> web.Response:
    now = _state(request).clock.now()
    deployment = _store(request).get(request.match_info["deployed_model"], now)
    body = await json_object(request)
    limits = {key: _positive_int(body, key) for key in ("rpm_limit", "tpm_limit")}
    if all(value is None for value in limits.values()):
        raise ApiError(400, "InvalidParameter", "rpm_limit or tpm_limit is required.")
    deployment.options.update({key: value for key, value in limits.items() if value is not None})
    return ok(deployment.to_output(now))


async def delete(request: web.Request) -> web.Response:
    now = _state(request).clock.now()
    deployment = _store(request).get(request.match_info["deployed_model"], now)
    phase = deployment.current(now)
    if _state(request).behaviour.delete_requires_stopped and phase.status not in DELETABLE_WHEN_STRICT | {"DELETING"}:
        raise ApiError(
            400,
            "OperationDenied",
            f"Deployment {deployment.deployed_model} is {phase.status}; only STOPPED or FAILED deployments can be "
            "deleted.",
        )
    if phase.status != "DELETING":
        deployment.timeline.cut_and_append(
            now,
            Phase(now, "DELETING", {**phase.extra, "ready_capacity": 0}),
            Phase(now + DELETING_SECONDS, GONE),
        )
    return ok(deployment.to_output(now))


async def stop(request: web.Request) -> web.Response:
    """``POST /_emulator/deployments/{deployed_model}/stop``: the deployment is STOPPED now, as if stopped in the
    console (the API documents no stop operation); what a delete needs under ``delete_requires_stopped``."""
    now = _state(request).clock.now()
    deployment = _store(request).get(request.match_info["deployed_model"], now)
    phase = deployment.current(now)
    if phase.status != "DELETING":
        deployment.timeline.cut_and_append(now, Phase(now, "STOPPED", {**phase.extra, "ready_capacity": 0}))
    return ok(deployment.to_output(now))


def setup(app: web.Application) -> None:
    store = DeploymentStore()
    app[STORE_KEY] = store
    state = app[STATE_KEY]
    state.register_live("deployments", lambda: len(store.live(state.clock.now())))
    state.add_reset_hook(store.clear)
    app.router.add_get(PREFIX + "/models", list_models)
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX, list_deployments)
    app.router.add_get(PREFIX + "/{deployed_model}", get_deployment)
    app.router.add_put(PREFIX + "/{deployed_model}/scale", scale)
    app.router.add_put(PREFIX + "/{deployed_model}/update", update)
    app.router.add_delete(PREFIX + "/{deployed_model}", delete)
    app.router.add_post("/_emulator/deployments/{deployed_model}/stop", stop)
