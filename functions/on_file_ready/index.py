"""FC entry: a run recorded its Bailian file as ready → start the fine-tune job."""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.entry import on_file_ready


def handler(event: bytes, context: Any) -> dict[str, Any]:
    return on_file_ready(event, context)
