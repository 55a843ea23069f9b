"""One FC invocation, observed: its log lines carry the function and FC's request id, and it ends with one
summary line (what it did, Bailian calls, OSS reads and writes, duration); the timer's also with a metrics line."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from bailian_flow.obs._context import bind, tallying
from bailian_flow.obs._format import configure

summary_log = logging.getLogger("bailian_flow.summary")
metrics_log = logging.getLogger("bailian_flow.metrics")

# The counters a summary line always has (null when nothing counted them).
COUNTERS = ("bailian_calls", "oss_reads", "oss_writes")
MAX_ERROR_CHARS = 500
MAX_LISTED_RUNS = 20  # a summary names the runs it touched; a bulk event could touch thousands

Handler = Callable[[Any, Any], Any]


def request_id_of(context: Any) -> str | None:
    request_id = getattr(context, "request_id", None)
    return str(request_id) if request_id else None


def function_name_of(context: Any, default: str) -> str:
    meta = getattr(context, "function", None)
    name = getattr(meta, "name", None) or os.environ.get("FC_FUNCTION_NAME")
    return str(name) if name else default


def summary_line(function: str, outcome: str, seconds: float, did: Mapping[str, Any], **counters: Any) -> None:
    """The invocation's one summary line (`event` = "invocation"), with its counters and what it did."""
    fields: dict[str, Any] = {"summary": True, "outcome": outcome, "seconds": round(seconds, 3)}
    for name in COUNTERS:
        fields[name] = counters.pop(name, None)
    fields.update(counters)
    fields["did"] = dict(did)
    summary_log.info("invocation", extra={"fields": fields})


def metrics_line(counts: Mapping[str, Any]) -> None:
    """The timer's tick report as one metrics line (`event` = "metrics", `metric` = "tick") for SLS to chart.

    `counts` is the tick report's counts: scalars (`active`, `waiting`, `polled`, `admitted`, `deferred`,
    `bailian_calls`, `oss_reads`, `oss_writes`, `seconds`, ...) and maps (`by_stage`, `by_kind`, `quotas`); they
    become top-level keys of the line, as they are (README, "Logs and metrics", has the queries).
    """
    fields: dict[str, Any] = {"metric": "tick"}
    for name, value in counts.items():
        fields[str(name)] = dict(value) if isinstance(value, Mapping) else value
    metrics_log.info("metrics", extra={"fields": fields})


def _runs_of(result: Any) -> list[dict[str, Any]]:
    runs = result.get("runs") if isinstance(result, dict) else None
    if not isinstance(runs, list):
        return []
    return [
        {name: run.get(name) for name in ("run_id", "kind", "stage")}
        for run in runs[:MAX_LISTED_RUNS]
        if isinstance(run, dict)
    ]


def describe(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What an invocation did, from what its handler returned, and the counters that result carries."""
    if not isinstance(result, dict):
        return {}, {}
    if "statusCode" in result:  # the webhook: an HTTP answer
        return {"status": result.get("statusCode")}, {}
    counts = result.get("counts")
    if isinstance(counts, dict):  # the timer's tick report
        did = {"active": result.get("active")}
        # Scalars only: the maps (runs by stage, by kind, quota use) are the metrics line's.
        did.update(
            (name, value)
            for name, value in counts.items()
            if name not in COUNTERS and name != "seconds" and not isinstance(value, Mapping)
        )
        for name in ("finished", "redriven", "adopted", "admitted", "undeployed"):
            if result.get(name):
                did[name] = list(result[name])[:MAX_LISTED_RUNS]
        return did, {name: counts[name] for name in COUNTERS if name in counts}
    runs = _runs_of(result)
    listed = result.get("runs")
    return {"runs": runs, "run_count": len(listed) if isinstance(listed, list) else 0}, {}


def invoke(function: str, handler: Handler, event: Any, context: Any) -> Any:
    """Run an FC handler observed: logging configured, function and request id bound to every line, one summary
    line at the end (also when it raises, then re-raised for FC to retry), and on the timer the metrics line."""
    configure()
    name = function_name_of(context, function)
    started = time.monotonic()
    with bind(function=name, request_id=request_id_of(context)), tallying() as tally:
        try:
            result = handler(event, context)
        except BaseException as exc:
            # FC prints the traceback itself and retries; the summary says which error, masked like any field.
            failed = {"error": type(exc).__name__, "message": str(exc)[:MAX_ERROR_CHARS]}
            summary_line(name, "error", time.monotonic() - started, failed, **tally)
            raise
        did, counters = describe(result)
        # What the pipeline counted itself (`obs.count`) wins over what its result reports.
        summary_line(name, "ok", time.monotonic() - started, did, **{**counters, **tally})
        if function == "on_timer" and isinstance(result, dict) and isinstance(result.get("counts"), dict):
            metrics_line({"active": result.get("active"), **result["counts"]})
    return result
