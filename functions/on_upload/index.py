"""FC entry: a dataset landed under the datasets prefix → validate, register with Bailian, record the run."""

from __future__ import annotations

from typing import Any

from bailian_flow.obs import invoke
from bailian_flow.pipeline.entry import on_upload


def handler(event: bytes, context: Any) -> dict[str, Any]:
    # Observed: its log lines carry the function and request id, and it ends with one summary line.
    result: dict[str, Any] = invoke("on_upload", on_upload, event, context)
    return result
