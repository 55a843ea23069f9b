"""FC entry (HTTP trigger): the REST API over runs, and inbound callbacks."""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.entry import on_http


def handler(event: bytes, context: Any) -> dict[str, Any]:
    return on_http(event, context)
