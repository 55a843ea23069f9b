"""Native fine-tune API: ``/api/v1/fine-tunes`` (bailian-api.md section 1)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from .behaviour import region_refusal
from .catalogue import BASE_MODELS, VL_MODELS, WAN_I2V_MODELS, ModelInfo, catalogue
from .common import ApiError, beijing, hex4, int_param, json_object, ok, paged, workspace_id
from .fine_tune_jobs import DEFAULT_HYPER_PARAMETERS, TERMINAL, TRAINING_TYPES, FineTuneJob
from .quotas import add_usage, quotas
from .state import STATE_KEY, EmulatorState

PREFIX = "/api/v1/fine-tunes"
# Real seconds between two looks at the log while streaming events.
STREAM_POLL_SECONDS = 0.2
# The Wan reference's create sample sends these, marked required (its table also has learning_rate etc.).
WAN_REQUIRED_HYPER_PARAMETERS = ("batch_size", "n_epochs")
# "当前模型调优 API 仅在北京 Region 开放" (help.aliyun.com 调优任务对象 page); the Wan fine-tune API reference on
# help.aliyun.com says Beijing only too. Conflict: alibabacloud.com's English Wan pages ("Video generation model
# fine-tuning API reference", "Fine-tune video generation models") say Singapore only; Beijing is kept (issue 14).
TRAINING_REGIONS = ("cn",)
BUSY_MESSAGE = "Too many fine-tune job in running, please retry later."


class FineTuneStore:
    def __init__(self) -> None:
        self.jobs: dict[str, FineTuneJob] = {}

    def clear(self) -> None:
        self.jobs.clear()

    def counted(self, now: float) -> int:
        """Jobs held against the quota: every one not FAILED or CANCELED (succeeded jobs count until deleted)."""
        return sum(1 for job in self.jobs.values() if job.status(now) not in ("FAILED", "CANCELED"))

    def busy(self, now: float) -> bool:
        """Whether a job of the account is unfinished (what the serial_training_refuses_create switch refuses)."""
        return any(job.status(now) not in TERMINAL for job in self.jobs.values())

    def replan(self, now: float) -> None:
        """Serial training: one job trains at a time, in creation order; a job not yet RUNNING waits in QUEUING
        until the job before it ends (re-planned whenever a create or cancel moves that end)."""
        free_at = float("-inf")
        for job in self.jobs.values():
            started = job.timeline.started_at("RUNNING")
            if started is not None and started <= now:
                free_at = max(free_at, job.training_ends() or now)
                continue
            if job.status(now) not in ("PENDING", "QUEUING"):
                continue
            job.timeline = FineTuneJob.schedule(job.created, job.outcome, running_at=free_at)
            free_at = job.training_ends() or free_at

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


def _hyper_parameters(raw: Any, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What training uses (the documented defaults under what was sent) and what the job echoes: only what was
    sent, ``learning_rate`` as a number (the training reference's samples)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(400, "InvalidParameter", "hyper_parameters must be an object.")
    sent = dict(raw)
    epochs = sent.get("n_epochs", DEFAULT_HYPER_PARAMETERS["n_epochs"])
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 100:
        raise ApiError(400, "InvalidParameter", f"n_epochs must be an integer in [1, 100], got {epochs!r}.")
    if "learning_rate" in sent:
        rate = sent["learning_rate"]
        try:
            rate_value = float(rate)
        except (TypeError, ValueError):
            raise ApiError(400, "InvalidParameter", f"learning_rate must be a number, got {rate!r}.") from None
        if isinstance(rate, bool) or not rate_value > 0:
            raise ApiError(400, "InvalidParameter", f"learning_rate must be positive, got {rate!r}.")
        sent["learning_rate"] = rate_value
    if "freeze_vit" in sent:
        if model not in VL_MODELS:
            raise ApiError(400, "InvalidParameter", f"freeze_vit applies to vision-language models only, not {model}.")
        if not isinstance(sent["freeze_vit"], bool):
            raise ApiError(400, "InvalidParameter", "freeze_vit must be true or false.")
    return {**DEFAULT_HYPER_PARAMETERS, **sent}, sent


def _wan_rules(state: EmulatorState, model: str, training_type: str, sent: dict[str, Any], files: list[str]) -> None:
    """What the Wan fine-tune API reference (help.aliyun.com model-studio "视频生成模型微调 API 参考", 创建调优任务)
    requires: LoRA training (``efficient_sft``), the hyper-parameters it marks required, and .zip datasets.
    Its region (Beijing only) is checked with the training API's."""
    if training_type != "efficient_sft":
        raise ApiError(400, "InvalidParameter", f"Model {model} supports training_type efficient_sft only.")
    missing = [name for name in WAN_REQUIRED_HYPER_PARAMETERS if name not in sent]
    if missing:
        raise ApiError(400, "InvalidParameter", f"hyper_parameters {', '.join(missing)} required for {model}.")
    for file_id in files:
        name = file_id if file_id.startswith("oss://") else state.file_name(file_id) or ""
        if not name.lower().endswith(".zip"):
            raise ApiError(400, "InvalidParameter", f"Model {model} trains on a .zip dataset; {file_id} is not one.")


def _store(request: web.Request) -> FineTuneStore:
    return request.app[STORE_KEY]


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


async def create(request: web.Request) -> web.Response:
    state, store = _state(request), _store(request)
    body = await json_object(request)
    refusal = region_refusal(state.region, TRAINING_REGIONS, "The fine-tune API")
    if refusal is not None:
        raise refusal
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
    hyper_parameters, sent = _hyper_parameters(body.get("hyper_parameters"), info.base_model)
    if info.base_model in WAN_I2V_MODELS:
        _wan_rules(state, model, training_type, sent, training_ids + validation_ids)
    now = state.clock.now()
    limits = quotas(request.app)
    # Counting is O(jobs): skipped while there are fewer jobs than the limit, so thousands of creates stay linear.
    if len(store.jobs) >= limits.fine_tune_jobs and store.counted(now) >= limits.fine_tune_jobs:
        raise ApiError(429, "Throttling", limits.fine_tune_message())
    if state.behaviour.serial_training_refuses_create and store.busy(now):
        raise ApiError(429, "Throttling", BUSY_MESSAGE)

    job_id = store.new_job_id(now)
    suffix = body.get("finetuned_output_suffix")
    output_name = body.get("finetuned_output") or body.get("model_name")
    if not isinstance(output_name, str) or not output_name:
        output_name = f"{model}-{suffix}-{job_id}" if suffix else f"{model}-{job_id}"
    extras: dict[str, Any] = {key: body[key] for key in ("training_datasets", "validation_datasets") if key in body}
    sent_name = body.get("job_name")
    outcome = state.take_scripted_outcome("fine_tune")
    job = FineTuneJob(
        job_id=job_id,
        # The reference documents the name as "the same as output.job_id"; keeping ours is a switch.
        job_name=str(sent_name) if sent_name and state.behaviour.job_name_kept else job_id,
        model=model,
        base_model=info.base_model,
        finetuned_output=output_name,
        training_file_ids=training_ids,
        validation_file_ids=validation_ids,
        hyper_parameters=hyper_parameters,
        sent_hyper_parameters=sent,
        training_type=training_type,
        created=now,
        timeline=FineTuneJob.schedule(now, outcome),
        workspace_id=workspace_id(request),
        request_extras=extras,
        outcome=outcome,
    )
    store.jobs[job_id] = job
    if state.behaviour.serial_training:
        store.replan(now)
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
        if _state(request).behaviour.serial_training:
            _store(request).replan(now)
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
