"""FC entry: a run recorded its Bailian file as ready → start the fine-tune job."""

from __future__ import annotations

from typing import Any

from bailian_flow.obs import invoke
from bailian_flow.pipeline.entry import on_file_ready


def handler(event: bytes, context: Any) -> dict[str, Any]:
    # Observed: its log lines carry the function and request id, and it ends with one summary line.
    result: dict[str, Any] = invoke("on_file_ready", on_file_ready, event, context)
    return result
