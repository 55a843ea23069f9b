"""FC entry: timer tick → advance every active run within the rate limits and the function's timeout."""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.entry import on_timer


def handler(event: bytes, context: Any) -> dict[str, Any]:
    return on_timer(event, context)
