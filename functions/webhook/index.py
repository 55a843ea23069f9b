"""FC entry (HTTP trigger): the REST API over runs, and inbound callbacks."""

from __future__ import annotations

from typing import Any

from bailian_flow.obs import invoke
from bailian_flow.pipeline.entry import on_http


def handler(event: bytes, context: Any) -> dict[str, Any]:
    # Observed: its log lines carry the function and request id, and it ends with one summary line.
    result: dict[str, Any] = invoke("webhook", on_http, event, context)
    return result
