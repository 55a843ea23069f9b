"""FC entry: a dataset landed under the datasets prefix → validate, register with Bailian, record the run."""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.entry import on_upload


def handler(event: bytes, context: Any) -> dict[str, Any]:
    return on_upload(event, context)
