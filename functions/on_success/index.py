"""FC entry: a run's fine-tune job succeeded → deploy, or import weights and deploy, or stop there."""

from __future__ import annotations

from typing import Any

from bailian_flow.obs import invoke
from bailian_flow.pipeline.entry import on_success


def handler(event: bytes, context: Any) -> dict[str, Any]:
    # Observed: its log lines carry the function and request id, and it ends with one summary line.
    result: dict[str, Any] = invoke("on_success", on_success, event, context)
    return result
