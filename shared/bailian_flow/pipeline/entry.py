"""What each FC function does with its event: parse, then hand over to the state machine.

Error policy: bad input (an event of unexpected shape, an invalid dataset or setting) is recorded as a FAILED run
and the handler returns normally, because an exception makes FC run the event again (3 more times by default) to
the same end. Only faults worth retrying (Bailian or OSS unavailable) escape as exceptions.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

# pydantic scans every installed distribution's entry points for plugins at its first model: a cold start pays it
# for nothing, since these functions use none (setdefault: an operator can still name plugins to load).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from bailian_flow import obs
from bailian_flow.config import Settings
from bailian_flow.pipeline.protocol.runtime import Flow, open_flow
from bailian_flow.runlog import is_run_id

log = logging.getLogger("bailian_flow.pipeline")

Work = Callable[[Flow, bytes], Awaitable[dict[str, Any]]]


def _invoke(work: Work, event: bytes | str, context: Any) -> dict[str, Any]:
    raw = event.encode() if isinstance(event, str) else bytes(event)

    async def main() -> dict[str, Any]:
        from bailian_flow.store import CountingStore

        async with open_flow(context, Settings.from_env()) as flow:
            # The summary line's OSS reads and writes; the client is read through `flow.bailian`, never
            # `flow.client`, which would make one (the webhook's reads never call Bailian).
            counting = CountingStore(flow.store)
            flow.store = flow.runs.store = counting
            try:
                return await work(flow, raw)
            finally:
                bailian = flow.bailian
                obs.count(
                    oss_reads=counting.reads,
                    oss_writes=counting.writes,
                    bailian_calls=bailian.requests_sent if bailian is not None else 0,
                )

    return asyncio.run(main())


def run_id_from_key(flow: Flow, key: str) -> str | None:
    """The run an object under the runs prefix belongs to: `runs/<run_id>/...`; None for anything else."""
    prefix = flow.settings.runs_prefix
    if not key.startswith(prefix):
        return None
    run_id, slash, _ = key[len(prefix) :].partition("/")
    return run_id if slash and is_run_id(run_id) else None


async def _chained(flow: Flow, raw: bytes, function: str, acts: frozenset[str]) -> dict[str, Any]:
    """on_file_ready / on_success: the event is a run-log entry; advance that run."""
    from bailian_flow.fc import InvalidEvent, parse_oss_event
    from bailian_flow.pipeline.protocol.steps import advance

    try:
        event = parse_oss_event(raw)
    except InvalidEvent as exc:
        from bailian_flow.pipeline.protocol.intake import (
            record_bad_event,  # intake's code is on_upload's, bar this case
        )

        bad = await record_bad_event(flow, raw, str(exc), function=function)
        return {"runs": [bad.public()]}
    runs = []
    for record in event.events:
        run_id = run_id_from_key(flow, record.object_key)
        if run_id is None:
            log.warning("%s: ignoring %s (not a run entry)", function, record.object_key)
            continue
        with obs.bind(run_id=run_id):
            state = await advance(flow, run_id, acts)
        if state is not None:
            runs.append(state.public())
    return {"runs": runs}


async def _upload(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.fc import InvalidEvent, parse_oss_event
    from bailian_flow.pipeline.protocol.inputs import is_canonical_key, shown
    from bailian_flow.pipeline.protocol.intake import record_bad_event
    from bailian_flow.pipeline.protocol.kinds import named, opener_for
    from bailian_flow.pipeline.protocol.steps import ON_UPLOAD, advance

    try:
        event = parse_oss_event(raw)
    except InvalidEvent as exc:
        bad = await record_bad_event(flow, raw, str(exc), function="on_upload")
        return {"runs": [bad.public()]}
    runs = []
    for record in event.events:
        key = await _real_key(flow, record.key_candidates)
        run_id = run_id_from_key(flow, key)
        if run_id is None:
            found = opener_for(flow.settings, key)
            if found is None:
                log.warning("on_upload: ignoring %s (no run kind watches it)", shown(key))
                continue
            kind, opener = found
            if opener.chained and record.bucket_name != flow.settings.bucket:
                log.warning("on_upload: ignoring %s in bucket %s", shown(key), record.bucket_name)
                continue
            if not is_canonical_key(key, prefix=getattr(flow.settings, opener.prefix_setting)):
                if opener.chained:
                    log.warning("on_upload: ignoring %s (not a canonical key)", shown(key))
                    continue
                # `.`/`..`/empty segments: an HTTP client may resolve them, reading another object than this one.
                reason = f"object key {shown(key)} has '.', '..' or empty segments, or characters OSS paths mangle"
                bad = await record_bad_event(flow, raw, reason, function="on_upload")
                runs.append(bad.public())
                continue
            if record.bucket_name != flow.settings.bucket:
                reason = f"bucket {record.bucket_name} is not the configured bucket {flow.settings.bucket}"
                bad = await record_bad_event(flow, raw, reason, function="on_upload")
                runs.append(bad.public())
                continue
            opened, _ = await named(opener.open)(flow, record.bucket_name, key, record.etag, kind=kind)
            if opened is None:
                continue
            if opener.chained:
                # Its first entry's own event hands it on (an import run's `job-succeeded` → on_success).
                runs.append(opened.public())
                continue
            run_id = opened.run_id
        with obs.bind(run_id=run_id):
            state = await advance(flow, run_id, ON_UPLOAD)
        if state is not None:
            runs.append(state.public())
    return {"runs": runs}


async def _real_key(flow: Flow, candidates: list[str]) -> str:
    """The event's key as stored: decoded unless only the key as sent exists (a literal `%20` in a name)."""
    if len(candidates) > 1:
        for candidate in candidates:
            if await flow.store.head(candidate) is not None:
                return candidate
    return candidates[0]


async def _file_ready(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.pipeline.protocol.steps import ON_FILE_READY

    return await _chained(flow, raw, "on_file_ready", ON_FILE_READY)


async def _success(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.pipeline.protocol.steps import ON_SUCCESS

    return await _chained(flow, raw, "on_success", ON_SUCCESS)


async def _timer(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.fc import InvalidEvent, parse_timer_event
    from bailian_flow.pipeline.timer.tick import tick

    try:
        parse_timer_event(raw)
    except InvalidEvent as exc:
        # The tick needs nothing from its event: note the oddity and do the work anyway.
        log.warning("on_timer: unexpected event shape (%s); ticking anyway", exc)
    report = await tick(flow)
    return report.as_dict()


async def _http(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.pipeline.rest.api import handle

    return await handle(flow, raw)


def on_upload(event: bytes, context: Any) -> dict[str, Any]:
    return _invoke(_upload, event, context)


def on_file_ready(event: bytes, context: Any) -> dict[str, Any]:
    return _invoke(_file_ready, event, context)


def on_success(event: bytes, context: Any) -> dict[str, Any]:
    return _invoke(_success, event, context)


def on_timer(event: bytes, context: Any) -> dict[str, Any]:
    return _invoke(_timer, event, context)


def on_http(event: bytes, context: Any) -> dict[str, Any]:
    return _invoke(_http, event, context)
