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


def retry_keeping(state: RunState) -> tuple[str, dict[str, Any]] | None:
    """Where a failed batch run's retry resumes (`KindSpec` hook `retry_keeping`): with the lines its collected shards
    answered kept (their parts are in the bucket, named by attempt) and only the other shards sent again, under the
    new attempt's names; None (plan again) when nothing was answered."""
    plan = plan_of(state)
    if not any(shard.part_key for shard in plan.shards):
        return None
    fresh = {
        "status": "planned",
        "file_id": None,
        "batch_id": None,
        "output_file_id": None,
        "error_file_id": None,
        "completed": 0,
        "failed": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "submitted_at": None,
        "finished_at": None,
    }
    shards = [shard if shard.part_key else shard.model_copy(update=fresh) for shard in plan.shards]
    kept = plan.model_copy(update={"shards": shards, "current": None, "waiting": None, "results_at": None})
    return "batch-ready", {"batch": kept}
