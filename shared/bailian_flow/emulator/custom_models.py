"""Native custom model import: ``/api/v1/custom_models/import`` (bailian-api.md section 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .catalogue import BASE_MODELS, ModelInfo, catalogue
from .common import ApiError, beijing, format_iso_offset, hex4, json_object, ok, paged
from .quotas import add_config_option
from .state import STATE_KEY, EmulatorState
from .timeline import Timeline

PREFIX = "/api/v1/custom_models/import"
PENDING_SECONDS = 5.0
IMPORT_SECONDS = 30.0
SUCCESS = "SUCCEEDED"
TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
WEIGHT_TYPES = frozenset({"full", "lora"})
MAX_DISPLAY_NAME = 50
FAILURE_CODE = "ModelFileInvalid"


@dataclass
class ImportJob:
    job_id: str
    model_name: str
    base_model: str
    display_name: str
    weight_type: str
    storage_info: dict[str, Any]
    created: float
    timeline: Timeline

    def status(self, now: float) -> str:
        return self.timeline.status(now)

    def to_output(self, now: float, success_spelling: str) -> dict[str, Any]:
        status = self.status(now)
        output: dict[str, Any] = {
            "job_id": self.job_id,
            "model_name": self.model_name,
            "base_model": self.base_model,
            "display_name": self.display_name,
            "source": "OSS",
            "weight_type": self.weight_type,
            "storage_info": dict(self.storage_info),
            "status": success_spelling if status == SUCCESS else status,
            "gmt_create": format_iso_offset(self.created),
        }
        if status == "FAILED":
            output["error_code"] = FAILURE_CODE
            output["error_message"] = "The model files under the object key are incomplete or unreadable."
        return output


class ImportStore:
    def __init__(self) -> None:
        self.jobs: dict[str, ImportJob] = {}
        # The Chinese docs spell success "SUCCESSED"; /_emulator/config can switch to that spelling.
        self.success_spelling = SUCCESS

    def clear(self) -> None:
        self.jobs.clear()
        self.success_spelling = SUCCESS

    def get(self, job_id: str) -> ImportJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFound", f"Import job {job_id} not found.")
        return job

    def produced_models(self, now: float) -> list[ModelInfo]:
        return [
            ModelInfo(job.model_name, job.base_model, BASE_MODELS.get(job.base_model, 1))
            for job in self.jobs.values()
            if job.status(now) == SUCCESS
        ]


STORE_KEY = web.AppKey("bailian_flow.emulator.custom_models", ImportStore)


def _store(request: web.Request) -> ImportStore:
    return request.app[STORE_KEY]


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, "InvalidParameter", f"{key} is required.")
    return value


async def create(request: web.Request) -> web.Response:
    # Region: the English import page says Singapore only, the Chinese one shows the Beijing host; the pages
    # conflict, so the emulator offers import in both regions (no refusal) rather than pick one.
    state, store = _state(request), _store(request)
    body = await json_object(request)
    base_model = _required_str(body, "model_name")
    if base_model not in BASE_MODELS:
        raise ApiError(404, "ModelNotFound", f"Model not found: {base_model}")
    display_name = str(body.get("display_name") or base_model)
    if len(display_name) > MAX_DISPLAY_NAME:
        raise ApiError(400, "InvalidParameter", f"display_name is longer than {MAX_DISPLAY_NAME} characters.")
    source = str(body.get("source") or "oss")
    if source.lower() != "oss":
        raise ApiError(400, "InvalidParameter", f"Unsupported source: {source}")
    weight_type = str(body.get("weight_type") or "full").lower()
    if weight_type not in WEIGHT_TYPES:
        raise ApiError(400, "InvalidParameter", f"Invalid weight_type: {weight_type}; expected full or lora.")
    storage = body.get("storage_info")
    if not isinstance(storage, dict):
        raise ApiError(400, "InvalidParameter", "storage_info is required.")
    _required_str(storage, "bucket_name")
    object_key = _required_str(storage, "object_key")
    if not object_key.endswith("/"):
        raise ApiError(400, "InvalidParameter", f"storage_info.object_key must end with '/': {object_key}")

    now = state.clock.now()
    stamp = beijing(now).strftime("%Y%m%d")
    job_id = f"import-{beijing(now).strftime('%Y%m%d%H%M%S')}-{hex4()}"
    outcome = state.take_scripted_outcome("import") or SUCCESS
    job = ImportJob(
        job_id=job_id,
        model_name=f"{base_model}-offline-{stamp}-{hex4()}",
        base_model=base_model,
        display_name=display_name,
        weight_type=weight_type,
        storage_info=dict(storage),
        created=now,
        timeline=Timeline.starting(now, (0.0, "PENDING"), (PENDING_SECONDS, "RUNNING"), (IMPORT_SECONDS, outcome)),
    )
    store.jobs[job_id] = job
    state.count_created("imports")
    return ok(job.to_output(now, store.success_spelling))


async def list_jobs(request: web.Request) -> web.Response:
    store = _store(request)
    status = request.query.get("status")
    model_name = request.query.get("model_name")
    now = _state(request).clock.now()
    state = _state(request)
    outputs = [
        job.to_output(now, store.success_spelling) for job in reversed(store.jobs.values()) if state.listed(job.created)
    ]
    if status:
        wanted = {SUCCESS, "SUCCESSED"} if status.upper() in (SUCCESS, "SUCCESSED") else {status.upper()}
        outputs = [item for item in outputs if item["status"] in wanted]
    if model_name:
        outputs = [item for item in outputs if model_name in (item["model_name"], item["base_model"])]
    fields, listed = paged(request, outputs, 10, 100)
    return ok({**fields, "list": listed})


async def get_job(request: web.Request) -> web.Response:
    store = _store(request)
    job = store.get(request.match_info["job_id"])
    return ok(job.to_output(_state(request).clock.now(), store.success_spelling))


async def delete(request: web.Request) -> web.Response:
    store = _store(request)
    job = store.get(request.match_info["job_id"])
    status = job.status(_state(request).clock.now())
    if status not in TERMINAL:
        raise ApiError(400, "OperationDenied", f"Import job {job.job_id} is {status}; it can not be deleted yet.")
    del store.jobs[job.job_id]
    return ok({"job_id": job.job_id, "status": "success"})


def _spelling_option(store: ImportStore) -> Callable[[Any], str]:
    """``/_emulator/config {"import_success_status": "SUCCESSED"}`` picks the success spelling (None reads it)."""

    def apply(spelling: Any) -> str:
        if spelling is not None:
            if spelling not in (SUCCESS, "SUCCESSED"):
                raise ApiError(400, "InvalidParameter", "import_success_status must be SUCCEEDED or SUCCESSED.")
            store.success_spelling = spelling
        return store.success_spelling

    return apply


def setup(app: web.Application) -> None:
    store = ImportStore()
    app[STORE_KEY] = store
    state = app[STATE_KEY]
    state.register_live("imports", lambda: len(store.jobs))
    state.add_reset_hook(store.clear)
    catalogue(app).add_source(lambda: store.produced_models(state.clock.now()))
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX, list_jobs)
    app.router.add_get(PREFIX + "/{job_id}", get_job)
    app.router.add_delete(PREFIX + "/{job_id}", delete)
    add_config_option(app, "import_success_status", _spelling_option(store))
