"""Adopt inputs (datasets, batch inputs, import markers) whose event never arrived: the loss the log cannot see.

Every run starts from an upload's OSS event; if FC drops that event for good, no run exists to re-drive. So the
timer lists the datasets prefix and starts a run for each dataset that has none, once its event has had time to
arrive (`redrive_after`). A cursor object remembers up to which modification time datasets were checked, so each
object is looked at about once; on the very first tick the cursor starts at "now", so deploying onto a bucket full
of old datasets does not suddenly fine-tune all of them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from bailian_flow.pipeline.protocol import kinds
from bailian_flow.pipeline.protocol.runtime import Flow, utc_now
from bailian_flow.pipeline.protocol.transitions import load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import ObjectInfo

log = logging.getLogger("bailian_flow.pipeline")

# Directly under the runs prefix with a leading underscore: never a run id, never a trigger's suffix.
CURSOR_NAME = "_scan-cursor.json"


def cursor_key(flow: Flow) -> str:
    return f"{flow.settings.runs_prefix}{CURSOR_NAME}"


async def _read_cursor(flow: Flow) -> datetime | None:
    raw = await flow.store.get(cursor_key(flow))
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(json.loads(raw)["checked_before"])
    except (ValueError, KeyError, TypeError):
        log.warning("scan cursor unreadable; starting from now")
        return None


async def _write_cursor(flow: Flow, checked_before: datetime) -> None:
    # Listings give whole seconds: keep a second of overlap so nothing at the boundary slips through unchecked.
    checked_before = checked_before.replace(microsecond=0) - timedelta(seconds=1)
    body = json.dumps({"checked_before": checked_before.isoformat()}).encode()
    await flow.store.put(cursor_key(flow), body, content_type="application/json")


async def adopt_orphans(flow: Flow) -> list[str]:
    """Start runs for datasets older than the event grace period that have none; returns their run ids."""
    now = utc_now()
    horizon = now - timedelta(seconds=flow.redrive_after_seconds)
    checked_before = await _read_cursor(flow)
    if checked_before is None:
        await _write_cursor(flow, now)
        return []
    if horizon <= checked_before:
        return []
    candidates: list[ObjectInfo] = [
        info
        for prefix in sorted({prefix for _, prefix, _ in kinds.watched(flow.settings)})
        async for info in flow.store.list(prefix)
        if kinds.opener_for(flow.settings, info.key) is not None and checked_before <= info.last_modified < horizon
    ]
    candidates.sort(key=lambda info: info.last_modified)
    adopted: list[str] = []
    reached = horizon
    for info in candidates:
        if flow.remaining() < 15.0:
            # Resume from here next tick; objects sharing this timestamp are checked again, harmlessly.
            reached = info.last_modified
            break
        run_id = run_id_for(flow.settings.bucket, info.key, info.etag)
        if await load(flow, run_id) is not None:
            continue
        found = kinds.opener_for(flow.settings, info.key)
        assert found is not None
        kind, opener = found
        # `requested` hands the run to on_upload through its marker's event, like the upload's own event would have
        # (a chained opener's first entry hands its run on by itself). The opener's code is loaded here only: a
        # tick that adopts nothing (nearly every tick) need not load it.
        state, created = await kinds.named(opener.open)(
            flow, flow.settings.bucket, info.key, info.etag, kind=kind, first_stage="requested"
        )
        if state is not None and created:
            log.warning("adopted %s: its upload event never arrived (run %s)", info.key, state.run_id)
            adopted.append(state.run_id)
    await _write_cursor(flow, reached)
    return adopted
