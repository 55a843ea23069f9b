"""FC entry: timer tick → advance every active run within the rate limits and the function's timeout."""

from __future__ import annotations

from typing import Any

from bailian_flow.obs import invoke
from bailian_flow.pipeline.entry import on_timer


def handler(event: bytes, context: Any) -> dict[str, Any]:
    # Observed: its log lines carry the function and request id, and it ends with one summary line.
    result: dict[str, Any] = invoke("on_timer", on_timer, event, context)
    return result
