"""`GET /account`: the account's quotas in use and the waiting line, as the timer last counted them.

Quota use comes from the timer's hint (`runs/_timer-state.json`, written each tick: what Bailian's lists showed
plus the runs let through that have not made their resource yet); it is as old as the last tick, and says so
(`counted_at`). The line is read now: each quota's `waiting/<quota>/` markers, first come first, and each
waiting run's state for what it waits for. Pending batch requests per model come from the active runs of the kinds
that report them (`shown` hook). Everything is bounded: a line lists its first runs, and counts them all.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bailian_flow.pipeline.protocol import admission, kinds
from bailian_flow.pipeline.protocol.layout import TIMER_STATE_NAME
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import load
from bailian_flow.runlog import is_run_id

MAX_LISTED_PER_LINE = 50  # runs shown per quota's line (all of them are counted, up to MAX_COUNTED)
MAX_COUNTED = 10_000
MAX_HINT_BYTES = 16 << 20
MAX_PENDING_RUNS = 50  # active runs read for their pending requests


def _quota_names() -> list[str]:
    names = [admission.FINE_TUNE_JOBS, admission.FILES]
    for spec in kinds.all_specs():
        names += [quota for quota in spec.quotas if quota not in names]
    return names


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _hint(flow: Flow) -> dict[str, Any]:
    raw = await flow.store.get(f"{flow.settings.runs_prefix}{TIMER_STATE_NAME}")
    if raw is None or len(raw) > MAX_HINT_BYTES:
        return {}
    try:
        hint = json.loads(raw)
    except ValueError:
        return {}  # only a hint: a damaged one shows no use, never an error
    return hint if isinstance(hint, dict) else {}


def _use(flow: Flow, quota: str, counted: Any) -> dict[str, Any]:
    counted = counted if isinstance(counted, dict) else {}
    use: dict[str, Any] = {"used": _count(counted.get("used")), "limit": admission.limit_of(flow, quota)}
    if quota == admission.FILES:
        use["bytes_used"] = _count(counted.get("bytes_used"))
        use["bytes_limit"] = flow.settings.quota_file_bytes
    return use


def _waits_for(state: RunState | None) -> dict[str, Any] | None:
    if state is None or state.waiting is None or state.stage != "waiting":
        return None
    waiting = state.waiting
    return {
        "quota": waiting.quota,
        "used": waiting.used,
        "limit": waiting.limit,
        "needs_bytes": waiting.needs_bytes,
        "needs_requests": dict(list((waiting.needs_requests or {}).items())[:20]),
        "redo": waiting.redo,
    }


async def account(flow: Flow) -> dict[str, Any]:
    hint = await _hint(flow)
    quotas_counted = hint.get("quotas")
    counted: dict[str, Any] = quotas_counted if isinstance(quotas_counted, dict) else {}
    quotas: dict[str, Any] = {}
    line: list[dict[str, Any]] = []
    for quota in _quota_names():
        keys: list[str] = []
        async for info in flow.store.list(admission.queue_prefix(quota)):
            keys.append(info.key)
            if len(keys) >= MAX_COUNTED:
                break
        quotas[quota] = {**_use(flow, quota, counted.get(quota)), "waiting": len(keys)}
        shown = [key for key in keys[:MAX_LISTED_PER_LINE] if is_run_id(admission.run_of(key))]
        states = await asyncio.gather(*(load(flow, admission.run_of(key)) for key in shown))
        for place, (key, current) in enumerate(zip(shown, states, strict=True), start=1):
            state = current.state if current is not None else None
            line.append(
                {
                    "quota": quota,
                    "place": place,
                    "run_id": admission.run_of(key),
                    "kind": state.kind if state else None,
                    "source": (state.source.key or state.source.file_id) if state else None,
                    "since": state.waiting.since if state and state.waiting else None,
                    "waits_for": _waits_for(state),
                }
            )
    return {
        "counted_at": hint.get("at") if isinstance(hint.get("at"), str) else None,
        "quotas": quotas,
        "line": line,
        "pending_requests": await _pending_requests(flow, hint),
    }


async def _pending_requests(flow: Flow, hint: dict[str, Any]) -> dict[str, int]:
    """Requests per model in the active runs' batches in flight (the 10,000-per-model limit's use)."""
    listed = hint.get("runs")
    runs: dict[str, Any] = listed if isinstance(listed, dict) else {}
    reporting = {spec.name for spec in kinds.all_specs() if "shown" in spec.hooks and spec.quotas}
    wanted = [
        run_id
        for run_id, brief in runs.items()
        if is_run_id(run_id) and isinstance(brief, dict) and brief.get("kind") in reporting and brief.get("follows")
    ][:MAX_PENDING_RUNS]
    pending: dict[str, int] = {}
    for current in await asyncio.gather(*(load(flow, run_id) for run_id in wanted)):
        if current is None:
            continue
        shown = kinds.spec_of(current.state.kind).required("shown")(current.state)
        for model, lines in dict(shown.get("pending_requests") or {}).items():
            pending[str(model)] = pending.get(str(model), 0) + int(lines)
    return pending
