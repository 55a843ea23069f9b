"""Structured logs and metrics for the FC functions (issue #18 §3).

Light on purpose: loaded by every handler before its first line of work, it imports only the standard library
modules a Python process has loaded anyway (logging, json, contextvars, os, time, re). See README, "Logs and
metrics".

    with bind(run_id=state.run_id, kind=state.kind, stage=state.stage):
        log.info("submitted shard %d", index)      # -> {"run_id": ..., "stage": ..., "event": "submitted shard 0"}
"""

from __future__ import annotations

from bailian_flow.obs._context import CONTEXT_FIELDS, bind, bound, count, tallying
from bailian_flow.obs._format import (
    FORMAT_VARIABLE,
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    chosen_format,
    configure,
    on_fc,
    unconfigure,
)
from bailian_flow.obs._invoke import describe, invoke, metrics_line, summary_line
from bailian_flow.obs._redact import MASK, live_secrets, redact, redact_value

__all__ = [
    "CONTEXT_FIELDS",
    "FORMAT_VARIABLE",
    "MASK",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "bind",
    "bound",
    "chosen_format",
    "configure",
    "count",
    "describe",
    "invoke",
    "live_secrets",
    "metrics_line",
    "on_fc",
    "redact",
    "redact_value",
    "summary_line",
    "tallying",
    "unconfigure",
]
