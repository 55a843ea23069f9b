"""FC entry: a run's fine-tune job succeeded → deploy, or import weights and deploy, or stop there."""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.entry import on_success


def handler(event: bytes, context: Any) -> dict[str, Any]:
    return on_success(event, context)
