"""Native fine-tune API: ``/api/v1/fine-tunes`` (bailian-api.md section 1)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from .catalogue import BASE_MODELS, ModelInfo, catalogue
from .common import ApiError, beijing, hex4, int_param, json_object, ok, paged, workspace_id
from .fine_tune_jobs import DEFAULT_HYPER_PARAMETERS, TERMINAL, TRAINING_TYPES, FineTuneJob
from .quotas import add_usage, quotas
from .state import STATE_KEY, EmulatorState

PREFIX = "/api/v1/fine-tunes"
# Real seconds between two looks at the log while streaming events.
STREAM_POLL_SECONDS = 0.2


class FineTuneStore:
    def __init__(self) -> None:
        self.jobs: dict[str, FineTuneJob] = {}

    def clear(self) -> None:
        self.jobs.clear()

    def counted(self, now: float) -> int:
        """Jobs held against the quota: every one not FAILED or CANCELED (succeeded jobs count until deleted)."""
        return sum(1 for job in self.jobs.values() if job.status(now) not in ("FAILED", "CANCELED"))

    def get(self, job_id: str) -> FineTuneJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFound", f"Fine-tune job {job_id} not found.")
        return job

    def new_job_id(self, now: float) -> str:
        stamp = beijing(now).strftime("%Y%m%d%H%M")
        while True:
            job_id = f"ft-{stamp}-{hex4()}"
            if job_id not in self.jobs:
                return job_id

    def produced_models(self, now: float) -> list[ModelInfo]:
        models: list[ModelInfo] = []
        for job in self.jobs.values():
            if job.status(now) != "SUCCEEDED":
                continue
            base = BASE_MODELS.get(job.base_model, 1)
            models.append(ModelInfo(job.finetuned_output, job.base_model, base))
            models.extend(ModelInfo(name, job.base_model, base) for name in job.exports.values())
        return models


STORE_KEY = web.AppKey("bailian_flow.emulator.fine_tunes", FineTuneStore)


def _file_ids(body: dict[str, Any], legacy_key: str, datasets_key: str) -> list[str]:
    """File ids from the legacy ``*_file_ids`` form or the ``*_datasets`` form (``oss_mount`` sources too)."""
    ids: list[str] = []
    legacy = body.get(legacy_key)
    if isinstance(legacy, str):
        legacy = [legacy]
    if legacy is not None:
        if not isinstance(legacy, list) or not all(isinstance(item, str) and item for item in legacy):
            raise ApiError(400, "InvalidParameter", f"{legacy_key} must be a list of file ids.")
        ids.extend(legacy)
    datasets = body.get(datasets_key)
    if datasets is not None:
        if not isinstance(datasets, list):
            raise ApiError(400, "InvalidParameter", f"{datasets_key} must be a list.")
        for dataset in datasets:
            if not isinstance(dataset, dict):
                raise ApiError(400, "InvalidParameter", f"{datasets_key} items must be objects.")
            kind = dataset.get("data_source_type", "file_id")
            if kind == "file_id" and isinstance(dataset.get("file_id"), str) and dataset["file_id"]:
                ids.append(dataset["file_id"])
            elif kind == "oss_mount" and isinstance(dataset.get("mount_storage"), dict):
                storage = dataset["mount_storage"]
                ids.append(f"oss://{storage.get('bucket', '')}/{storage.get('file_path', '')}")
            else:
                raise ApiError(400, "InvalidParameter", f"Invalid {datasets_key} item: {dataset}.")
    return ids


def _hyper_parameters(raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(400, "InvalidParameter", "hyper_parameters must be an object.")
    merged = {**DEFAULT_HYPER_PARAMETERS, **raw}
    epochs = merged["n_epochs"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 100:
        raise ApiError(400, "InvalidParameter", f"n_epochs must be an integer in [1, 100], got {epochs!r}.")
    rate = merged["learning_rate"]
    try:
        rate_value = float(rate)
    except (TypeError, ValueError):
        raise ApiError(400, "InvalidParameter", f"learning_rate must be a number, got {rate!r}.") from None
    if not rate_value > 0:
        raise ApiError(400, "InvalidParameter", f"learning_rate must be positive, got {rate!r}.")
    # The service reports learning_rate as a string.
    merged["learning_rate"] = rate if isinstance(rate, str) else repr(float(rate))
    return merged


def _store(request: web.Request) -> FineTuneStore:
    return request.app[STORE_KEY]


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


async def create(request: web.Request) -> web.Response:
    state, store = _state(request), _store(request)
    body = await json_object(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "InvalidParameter", "model is required.")
    training_ids = _file_ids(body, "training_file_ids", "training_datasets")
    validation_ids = _file_ids(body, "validation_file_ids", "validation_datasets")
    if not training_ids:
        raise ApiError(400, "InvalidParameter", "Missing training files")
    info = catalogue(request.app).fine_tunable(model)
    if info is None:
        raise ApiError(404, "ModelNotFound", f"Model not found: {model}")
    training_type = body.get("training_type") or "sft"
    if training_type not in TRAINING_TYPES:
        raise ApiError(400, "InvalidParameter", f"Unsupported training_type: {training_type}")
    for file_id in training_ids + validation_ids:
        if not file_id.startswith("oss://") and not state.file_exists(file_id):
            raise ApiError(400, "InvalidParameter", f"File not found: {file_id}")
    hyper_parameters = _hyper_parameters(body.get("hyper_parameters"))
    now = state.clock.now()
    limits = quotas(request.app)
    # Counting is O(jobs): skipped while there are fewer jobs than the limit, so thousands of creates stay linear.
    if len(store.jobs) >= limits.fine_tune_jobs and store.counted(now) >= limits.fine_tune_jobs:
        raise ApiError(429, "Throttling", limits.fine_tune_message())

    job_id = store.new_job_id(now)
    suffix = body.get("finetuned_output_suffix")
    output_name = body.get("finetuned_output") or body.get("model_name")
    if not isinstance(output_name, str) or not output_name:
        output_name = f"{model}-{suffix}-{job_id}" if suffix else f"{model}-{job_id}"
    extras: dict[str, Any] = {key: body[key] for key in ("training_datasets", "validation_datasets") if key in body}
    job = FineTuneJob(
        job_id=job_id,
        job_name=str(body.get("job_name") or job_id),
        model=model,
        base_model=info.base_model,
        finetuned_output=output_name,
        training_file_ids=training_ids,
        validation_file_ids=validation_ids,
        hyper_parameters=hyper_parameters,
        training_type=training_type,
        created=now,
        timeline=FineTuneJob.schedule(now, state.take_scripted_outcome("fine_tune")),
        workspace_id=workspace_id(request),
        request_extras=extras,
    )
    store.jobs[job_id] = job
    state.count_created("fine_tunes")
    return ok(job.to_output(now))


async def list_jobs(request: web.Request) -> web.Response:
    model = request.query.get("model")
    now = _state(request).clock.now()
    state = _state(request)
    jobs = [
        job
        for job in reversed(_store(request).jobs.values())
        if (not model or job.model == model) and state.listed(job.created)
    ]
    fields, listed = paged(request, jobs, 10, 100)
    return ok({**fields, "jobs": [job.to_output(now) for job in listed]})


async def get_job(request: web.Request) -> web.Response:
    job = _store(request).get(request.match_info["job_id"])
    return ok(job.to_output(_state(request).clock.now()))


async def cancel(request: web.Request) -> web.Response:
    job = _store(request).get(request.match_info["job_id"])
    now = _state(request).clock.now()
    status = job.status(now)
    if status in TERMINAL:
        raise ApiError(400, "UnsupportedOperation", f"Job {job.job_id} is {status} and can not be canceled.")
    if status != "CANCELING":
        job.cancel(now)
    return ok({"status": "success"})


async def delete(request: web.Request) -> web.Response:
    store = _store(request)
    job = store.get(request.match_info["job_id"])
    status = job.status(_state(request).clock.now())
    if status not in TERMINAL:
        raise ApiError(400, "UnsupportedOperation", f"Job {job.job_id} is {status}; only finished jobs can be deleted.")
    del store.jobs[job.job_id]
    return ok({"status": "success"})


async def logs(request: web.Request) -> web.Response:
    job = _store(request).get(request.match_info["job_id"])
    # offset is a 0-based line index (the documented default is 0; the dashscope SDK starts at 1).
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    line = int_param(request, "line", 100, 1, 1000)
    lines = job.log_lines(_state(request).clock.now())
    return ok({"total": len(lines), "logs": lines[offset : offset + line]})


async def checkpoints(request: web.Request) -> web.Response:
    job = _store(request).get(request.match_info["job_id"])
    return ok(job.checkpoints(_state(request).clock.now()))


async def export(request: web.Request) -> web.Response:
    job = _store(request).get(request.match_info["job_id"])
    name = request.match_info["checkpoint"]
    model_name = request.query.get("model_name")
    if not model_name:
        raise ApiError(400, "InvalidParameter", "model_name is required.")
    now = _state(request).clock.now()
    if job.status(now) != "SUCCEEDED":
        raise ApiError(400, "UnsupportedOperation", "Only checkpoints of succeeded jobs can be exported.")
    if name not in {item["checkpoint"] for item in job.checkpoints(now)}:
        raise ApiError(404, "NotFound", f"Checkpoint {name} of job {job.job_id} not found.")
    job.exports[name] = model_name
    return ok(True)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``data:`` line per log line, until the job is finished."""
    store, clock = _store(request), _state(request).clock
    job = store.get(request.match_info["job_id"])
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    sent = 0
    with contextlib.suppress(ConnectionError):
        while True:
            now = clock.now()
            lines = job.log_lines(now)
            for line in lines[sent:]:
                sent += 1
                await response.write(f"id:{sent}\nevent:result\n:HTTP_STATUS/200\ndata:{line}\n\n".encode())
            if job.status(now) in TERMINAL or job.job_id not in store.jobs:
                break
            await asyncio.sleep(STREAM_POLL_SECONDS)
        await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    store = FineTuneStore()
    app[STORE_KEY] = store
    state = app[STATE_KEY]
    state.register_live("fine_tunes", lambda: len(store.jobs))
    add_usage(app, "fine_tune_jobs", lambda: store.counted(state.clock.now()))
    state.add_reset_hook(store.clear)
    catalogue(app).add_source(lambda: store.produced_models(state.clock.now()))
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX, list_jobs)
    app.router.add_get(PREFIX + "/{job_id}", get_job)
    app.router.add_delete(PREFIX + "/{job_id}", delete)
    app.router.add_post(PREFIX + "/{job_id}/cancel", cancel)
    app.router.add_get(PREFIX + "/{job_id}/logs", logs)
    app.router.add_get(PREFIX + "/{job_id}/stream", stream)
    app.router.add_get(PREFIX + "/{job_id}/checkpoints", checkpoints)
    app.router.add_get(PREFIX + "/{job_id}/export/{checkpoint}", export)
