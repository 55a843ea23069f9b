"""How a batch run reads its settings: a batch's (endpoint, window, ...), not a fine-tune's; the kind's
`settings_for`, `request_settings` and `agrees` hooks (`spec.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bailian_flow.pipeline.kinds.batch.batch_settings import resolve_batch_settings
from bailian_flow.pipeline.kinds.batch.batch_state import BatchRun, plan_of
from bailian_flow.pipeline.protocol.intake import read_sidecar
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.settings import deep_merge
from bailian_flow.pipeline.protocol.state import RunState


async def settings_update(
    flow: Flow, key: str, metadata: Mapping[str, str], explicit: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A batch input's settings (metadata < sidecar < explicit), as the run's empty plan: a retry starts over, with
    a new plan and shards named after the new attempt."""
    sidecar_key, sidecar = await read_sidecar(flow, key)
    settings = resolve_batch_settings(
        metadata=metadata, sidecar=sidecar, explicit=explicit, object_key=key, sidecar_key=sidecar_key
    )
    return {"batch": BatchRun(settings=settings)}


def request_settings(value: dict[str, Any]) -> None:
    """A REST body's batch settings, checked (SettingsError names the field)."""
    resolve_batch_settings(explicit=value)


def agrees(state: RunState, explicit: dict[str, Any]) -> bool:
    """Whether the run already has these settings (a repeated request is the same request)."""
    settings = plan_of(state).settings
    return resolve_batch_settings(explicit=deep_merge(settings.model_dump(), explicit)) == settings
