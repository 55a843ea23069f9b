"""OpenAI-compatible batches, ``/compatible-mode/v1/batches`` (bailian-api.md section 5).

Lifecycle, advanced lazily from the emulated clock whenever a batch is read: ``validating`` (5 s), then the
input is checked and answered in a worker thread (:mod:`.batch_runner`): an invalid input, or a scripted
``FAILED`` outcome, ends in ``failed`` with ``errors``; otherwise ``in_progress`` (20 s), ``finalizing`` (5 s)
and ``completed`` with ``output_file_id`` / ``error_file_id`` (compatible files of purpose ``batch_output``).
Cancel moves an active batch to ``cancelling`` and, 5 s later, ``cancelled``. Timestamps are derived from the
creation time plus the declared durations, so they do not depend on when a client happens to poll.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from aiohttp import web

from .batch_runner import ENDPOINTS, BatchResult, expire_result, run_batch
from .compat_files import add_file, compat_files
from .cursor import cursor_limit, cursor_page
from .errors import compat_error
from .quotas import add_usage, quotas
from .state import STATE_KEY

VALIDATING_SECONDS = 5.0
IN_PROGRESS_SECONDS = 20.0
FINALIZING_SECONDS = 5.0
CANCELLING_SECONDS = 5.0
ACTIVE = ("validating", "in_progress", "finalizing")
# Held against the parallel-batch quota (its refusal is undocumented: see quotas.py).
RUNNING = (*ACTIVE, "cancelling")
# Lists show the last 30 days only.
LISTED_SECONDS = 30 * 24 * 3600
STATUSES = (*ACTIVE, "failed", "completed", "expired", "cancelling", "cancelled")
METADATA_LIMITS = {"ds_name": 100, "ds_description": 200}
CALLBACK_ATTEMPTS = 3
CALLBACK_POLL_SECONDS = 0.1
_WINDOW = re.compile(r"^(\d+)([hd])$")


@dataclass
class BatchRecord:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    window_seconds: int
    metadata: dict[str, str] | None
    created_at: int
    scripted_outcome: str | None
    status: str = "validating"
    times: dict[str, int | None] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    result: BatchResult | None = None
    callback_sent: bool = False
    # `SLOW:<seconds>` scripts a batch that takes longer: past its window it expires with what it did.
    in_progress_seconds: float = IN_PROGRESS_SECONDS
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, metadata={"persist": False})

    def to_json(self, now: float) -> dict[str, Any]:
        counts = {"total": 0, "completed": 0, "failed": 0}
        if self.result is not None and not self.result.errors:
            counts["total"] = self.result.total
            done_fraction = 1.0
            started = self.times.get("in_progress_at")
            if self.status == "in_progress" and started is not None:
                done_fraction = min(1.0, max(0.0, (now - started) / self.in_progress_seconds))
            counts["completed"] = int(self.result.succeeded * done_fraction)
            counts["failed"] = int(self.result.failed * done_fraction)
        body: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.result.model if self.result is not None else None,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + self.window_seconds,
        }
        for name in (
            "in_progress_at",
            "finalizing_at",
            "completed_at",
            "failed_at",
            "expired_at",
            "cancelling_at",
            "cancelled_at",
        ):
            body[name] = self.times.get(name)
        body["request_counts"] = counts
        body["metadata"] = self.metadata
        return body


class Batches:
    def __init__(self) -> None:
        self.records: dict[str, BatchRecord] = {}

    def clear(self) -> None:
        self.records.clear()


BATCHES_KEY = web.AppKey("bailian_flow.emulator.batches", Batches)


async def advance(app: web.Application, record: BatchRecord) -> None:
    """Move ``record`` through every transition that is due at the current emulated time."""
    async with record.lock:
        now = app[STATE_KEY].clock.now()
        if record.status == "cancelling":
            cancelling_at = record.times["cancelling_at"] or record.created_at
            if now >= cancelling_at + CANCELLING_SECONDS:
                record.status = "cancelled"
                record.times["cancelled_at"] = int(cancelling_at + CANCELLING_SECONDS)
            return
        validated_at = record.created_at + VALIDATING_SECONDS
        if record.status == "validating" and now >= validated_at:
            await _validate(app, record, int(validated_at))
        finalizing_at = validated_at + record.in_progress_seconds
        expires_at = record.created_at + record.window_seconds
        if record.status == "in_progress" and now >= expires_at and expires_at < finalizing_at:
            await _expire(app, record, expires_at)
            return
        if record.status == "in_progress" and now >= finalizing_at:
            record.status = "finalizing"
            record.times["finalizing_at"] = int(finalizing_at)
        completed_at = finalizing_at + FINALIZING_SECONDS
        if record.status == "finalizing" and now >= completed_at:
            _complete(app, record, int(completed_at))


async def _expire(app: web.Application, record: BatchRecord, at: int) -> None:
    """The window passed while the batch ran: keep what it answered by then, the rest is `batch_expired`."""
    result = record.result
    if result is not None:
        started = record.times.get("in_progress_at") or record.created_at
        fraction = (at - started) / record.in_progress_seconds
        record.result = result = await asyncio.to_thread(expire_result, result, fraction, compat_files(app).blobs)
        _add_result_files(app, record, result)
    record.status = "expired"
    record.times["expired_at"] = at


async def _validate(app: web.Application, record: BatchRecord, at: int) -> None:
    outcome = record.scripted_outcome
    if outcome is not None and outcome.startswith("SLOW:"):
        record.in_progress_seconds = float(outcome.partition(":")[2])
        outcome = None
    if outcome == "EXPIRED":
        record.status = "expired"
        record.times["expired_at"] = at
        return
    failed_share = 0.0
    if outcome is not None and outcome.startswith("PARTIAL"):
        # `PARTIAL:<share>`: the batch completes with that share of its lines failed.
        _, _, share = outcome.partition(":")
        failed_share = float(share or 0.25)
        outcome = None
    if outcome is not None and outcome not in ("SUCCEEDED", "COMPLETED"):
        _fail(record, at, "scripted_failure", f"The batch ended in the scripted outcome {outcome}.")
        return
    input_file = compat_files(app).records.get(record.input_file_id)
    if input_file is None:
        _fail(record, at, "file_not_found", f"The input file {record.input_file_id} no longer exists.")
        return
    # The order of a result file's lines is undocumented: the strict reading shuffles them (behaviour.py).
    seed = None if app[STATE_KEY].behaviour.batch_answers_in_order else record.id
    result = await asyncio.to_thread(
        run_batch, input_file.path, record.endpoint, record.created_at, compat_files(app).blobs, failed_share, seed
    )
    record.result = result
    if result.errors:
        _fail(record, at, None, None, result.errors)
        return
    record.status = "in_progress"
    record.times["in_progress_at"] = at


def _fail(
    record: BatchRecord,
    at: int,
    code: str | None,
    message: str | None,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    record.status = "failed"
    record.times["failed_at"] = at
    record.errors = errors if errors is not None else [{"code": code, "message": message, "param": None, "line": None}]


def _add_result_files(app: web.Application, record: BatchRecord, result: BatchResult) -> None:
    if result.output is not None:
        output = add_file(app, result.output, f"{record.id}_output.jsonl", "batch_output", "file-batch_output")
        record.output_file_id = output.id
    if result.error_output is not None:
        errors = add_file(app, result.error_output, f"{record.id}_error.jsonl", "batch_output", "file-batch_error")
        record.error_file_id = errors.id


def _complete(app: web.Application, record: BatchRecord, at: int) -> None:
    if record.result is not None:
        _add_result_files(app, record, record.result)
    record.status = "completed"
    record.times["completed_at"] = at


def _invalid(message: str, param: str | None = None) -> web.Response:
    return compat_error(400, "invalid_parameter_error", message, param=param)


def _window_seconds(window: Any) -> int | None:
    match = _WINDOW.match(window) if isinstance(window, str) else None
    if match is None:
        return None
    hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
    return hours * 3600 if 24 <= hours <= 336 else None


def _metadata_problem(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16:
        return "metadata must be an object of at most 16 string pairs."
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            return f"metadata {key!r} must be a string of at most 512 characters under a key of at most 64."
        if key in METADATA_LIMITS and len(value) > METADATA_LIMITS[key]:
            return f"metadata {key!r} is longer than {METADATA_LIMITS[key]} characters."
        if key == "ds_batch_finish_callback" and not value.startswith(("http://", "https://")):
            return "metadata 'ds_batch_finish_callback' must be an http(s) URL."
    return None


async def create(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _invalid("The request body is not valid JSON.")
    if not isinstance(body, dict):
        return _invalid("The request body must be a JSON object.")
    input_file_id = body.get("input_file_id")
    endpoint = body.get("endpoint")
    window = body.get("completion_window", "24h")
    metadata = body.get("metadata")
    if not isinstance(input_file_id, str):
        return _invalid("input_file_id is required.", "input_file_id")
    input_file = compat_files(request.app).records.get(input_file_id)
    if input_file is None:
        return _invalid(f"No file found with id {input_file_id!r}.", "input_file_id")
    if input_file.purpose != "batch":
        return _invalid(f"File {input_file_id} has purpose {input_file.purpose!r}, not 'batch'.", "input_file_id")
    if endpoint not in ENDPOINTS:
        return _invalid(f"endpoint must be one of {', '.join(ENDPOINTS)}.", "endpoint")
    window_seconds = _window_seconds(window)
    if window_seconds is None:
        return _invalid("completion_window must be between 24h and 336h (or 1d to 14d).", "completion_window")
    problem = _metadata_problem(metadata)
    if problem is not None:
        return _invalid(problem, "metadata")
    state = request.app[STATE_KEY]
    running = [r for r in request.app[BATCHES_KEY].records.values() if r.status in RUNNING]
    for other in running:
        await advance(request.app, other)
    limit = quotas(request.app).batches
    if sum(1 for other in running if other.status in RUNNING) >= limit:
        message = quotas(request.app).batches_message()
        return compat_error(429, "LimitExceeded.BatchTasks", message, type_="rate_limit")
    record = BatchRecord(
        id=f"batch_{uuid.uuid4()}",
        input_file_id=input_file_id,
        endpoint=endpoint,
        completion_window=window,
        window_seconds=window_seconds,
        metadata=metadata,
        created_at=int(state.clock.now()),
        scripted_outcome=state.take_scripted_outcome("batch"),
    )
    request.app[BATCHES_KEY].records[record.id] = record
    state.count_created("batches")
    return web.json_response(record.to_json(state.clock.now()))


def _lookup(request: web.Request) -> BatchRecord | None:
    return request.app[BATCHES_KEY].records.get(request.match_info["batch_id"])


def _not_found(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    return compat_error(404, "NotFound", f"No batch found with id {batch_id!r}.", param="batch_id")


async def retrieve(request: web.Request) -> web.Response:
    record = _lookup(request)
    if record is None:
        return _not_found(request)
    await advance(request.app, record)
    return web.json_response(record.to_json(request.app[STATE_KEY].clock.now()))


async def cancel(request: web.Request) -> web.Response:
    record = _lookup(request)
    if record is None:
        return _not_found(request)
    await advance(request.app, record)
    now = request.app[STATE_KEY].clock.now()
    if record.status in ACTIVE:
        record.status = "cancelling"
        record.times["cancelling_at"] = int(now)
    elif record.status not in ("cancelling", "cancelled"):
        return compat_error(409, "Conflict", f"Cannot cancel a batch with status {record.status!r}.")
    return web.json_response(record.to_json(now))


async def list_batches(request: web.Request) -> web.Response:
    """The batch pages (help.aliyun.com model-studio "批量推理", 查询任务列表): ``status`` takes a comma-separated list,
    and a list shows the batches of the last 30 days only."""
    limit = cursor_limit(request, 100)
    raw_status = request.query.get("status")
    statuses = {item.strip() for item in raw_status.split(",")} if raw_status is not None else None
    if statuses is not None and not statuses <= set(STATUSES):
        return _invalid(f"status must be a comma-separated list of {', '.join(STATUSES)}.", "status")
    state = request.app[STATE_KEY]
    oldest = state.clock.now() - LISTED_SECONDS
    records = [
        r
        for r in reversed(request.app[BATCHES_KEY].records.values())
        if state.listed(r.created_at) and r.created_at >= oldest
    ]
    for record in records:
        await advance(request.app, record)
    if statuses is not None:
        records = [r for r in records if r.status in statuses]
    after = request.query.get("after")
    listed, cursor = cursor_page(records, attrgetter("id"), after, limit, f"No batch found with id {after!r}.")
    now = state.clock.now()
    return web.json_response({"object": "list", "data": [r.to_json(now) for r in listed], **cursor})


async def _send_callback(url: str, body: dict[str, Any]) -> None:
    """POST the finished batch to its callback URL, a few times if the receiver fails."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(CALLBACK_ATTEMPTS):
            try:
                async with session.post(url, json=body) as response:
                    if response.status < 500:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.5 * 2**attempt)


async def _callbacks(app: web.Application) -> Any:
    """Background task: a batch that reaches a terminal state calls its ``ds_batch_finish_callback``."""
    sending: set[asyncio.Task[None]] = set()

    async def loop() -> None:
        while True:
            await asyncio.sleep(CALLBACK_POLL_SECONDS)
            now = app[STATE_KEY].clock.now()
            for record in list(app[BATCHES_KEY].records.values()):
                url = (record.metadata or {}).get("ds_batch_finish_callback")
                if not url or record.callback_sent:
                    continue
                await advance(app, record)
                if record.status in ("completed", "failed", "expired", "cancelled"):
                    record.callback_sent = True
                    task = asyncio.create_task(_send_callback(url, record.to_json(now)))
                    sending.add(task)
                    task.add_done_callback(sending.discard)

    runner = asyncio.create_task(loop())
    yield
    runner.cancel()
    for task in sending:
        task.cancel()


def setup(app: web.Application) -> None:
    state = app[STATE_KEY]
    batches = Batches()
    app[BATCHES_KEY] = batches
    compat_files(app)
    state.register_live("batches", lambda: len(batches.records))
    # As last advanced (batches move when read): what the parallel-batch quota counts.
    add_usage(app, "batches", lambda: sum(1 for r in batches.records.values() if r.status in RUNNING))
    state.add_reset_hook(batches.clear)
    prefix = "/compatible-mode/v1/batches"
    app.router.add_post(prefix, create)
    app.router.add_get(prefix, list_batches)
    app.router.add_get(prefix + "/{batch_id}", retrieve)
    app.router.add_post(prefix + "/{batch_id}/cancel", cancel)
    app.cleanup_ctx.append(_callbacks)
