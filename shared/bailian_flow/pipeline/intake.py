"""Where runs begin: a dataset object (from its OSS event or the REST API), a registered file, or bad input.

The run id is derived from the source (bucket, key, ETag), so every delivery of the same upload maps to the same
run and the first entry's create-only write makes exactly one of them its author.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Literal

from bailian_flow.pipeline.batch_settings import resolve_batch_settings
from bailian_flow.pipeline.batch_state import BatchRun
from bailian_flow.pipeline.layout import SIDECAR_SUFFIX
from bailian_flow.pipeline.runtime import Flow, utc_now
from bailian_flow.pipeline.settings import RunSettings, SettingsError, parse_sidecar, resolve_settings
from bailian_flow.pipeline.state import RunError, RunKind, RunState, Source
from bailian_flow.pipeline.transitions import create, load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import bare_etag

log = logging.getLogger("bailian_flow.pipeline")


def _now() -> str:
    return utc_now().isoformat().replace("+00:00", "Z")


def _normal_etag(etag: str | None) -> str:
    # Events carry ETags bare, HEAD and listings quoted; run ids and comparisons use one spelling.
    return bare_etag(etag).upper()


async def _keep_marked(flow: Flow, state: RunState) -> None:
    """A redelivery of an open run re-marks it: runs written before markers came first may have lost theirs."""
    if not state.terminal:
        await flow.runs.mark_active(state.run_id)


async def settings_for(
    flow: Flow, key: str, metadata: Mapping[str, str], explicit: Mapping[str, Any] | None
) -> RunSettings:
    sidecar_key = key + SIDECAR_SUFFIX
    raw = await flow.store.get(sidecar_key)
    sidecar = parse_sidecar(raw, object_key=sidecar_key) if raw is not None else None
    return resolve_settings(
        flow.settings.defaults,
        metadata=metadata,
        sidecar=sidecar,
        explicit=explicit,
        object_key=key,
        sidecar_key=sidecar_key,
    )


async def batch_settings_for(
    flow: Flow, key: str, metadata: Mapping[str, str], explicit: Mapping[str, Any] | None
) -> BatchRun:
    """A batch input's settings (metadata < sidecar < explicit), as the run's empty batch plan."""
    sidecar_key = key + SIDECAR_SUFFIX
    raw = await flow.store.get(sidecar_key)
    sidecar = parse_sidecar(raw, object_key=sidecar_key) if raw is not None else None
    settings = resolve_batch_settings(
        metadata=metadata, sidecar=sidecar, explicit=explicit, object_key=key, sidecar_key=sidecar_key
    )
    return BatchRun(settings=settings)


async def open_run_for_object(
    flow: Flow,
    bucket: str,
    key: str,
    etag: str | None,
    *,
    explicit: Mapping[str, Any] | None = None,
    first_stage: Literal["received", "requested"] = "received",
    kind: RunKind = "fine-tune",
) -> tuple[RunState | None, bool]:
    """Find or create the run of one uploaded object. Returns (state, created); state None = nothing to do.

    `received` when the caller goes on to act itself (on_upload); `requested` when it hands over to on_upload
    through that entry's event (the REST API, the timer's scan).
    """
    info = await flow.store.head(key)
    if info is None:
        log.warning("object %s is gone; no run", key)
        return None, False
    if etag and _normal_etag(info.etag) != _normal_etag(etag):
        # The object was overwritten since this event: the newer upload has its own event and run.
        log.info("object %s changed since the event (ETag %s → %s); skipping", key, etag, info.etag)
        return None, False
    run_id = run_id_for(bucket, key, _normal_etag(info.etag))
    existing = await load(flow, run_id)
    if existing is not None:
        await _keep_marked(flow, existing.state)
        return existing.state, False
    source = Source(bucket=bucket, key=key, etag=_normal_etag(info.etag), size=info.size)
    error: RunError | None = None
    settings = RunSettings.from_defaults(flow.settings.defaults)
    batch: BatchRun | None = BatchRun() if kind == "batch" else None
    try:
        if kind == "batch":
            batch = await batch_settings_for(flow, key, info.metadata or {}, explicit)
        else:
            settings = await settings_for(flow, key, info.metadata or {}, explicit)
    except SettingsError as exc:
        error = RunError(reason=exc.reason, object=exc.object_key, field=exc.field, code="InvalidSettings")
    state = RunState(
        run_id=run_id,
        kind=kind,
        batch=batch,
        stage="failed" if error else first_stage,
        source=source,
        settings=settings,
        created_at=_now(),
        error=error,
    )
    written = await create(flow, state, f"failed: {error.reason}" if error else f"{first_stage} {key}")
    if written is None:
        again = await load(flow, run_id)
        return (again.state if again else None), False
    return written, True


async def open_run_for_file(
    flow: Flow, file_id: str, *, explicit: Mapping[str, Any] | None = None
) -> tuple[RunState, bool]:
    """A run from a file already registered with Bailian: it starts at file-ready."""
    run_id = run_id_for("bailian-file", file_id, "")
    existing = await load(flow, run_id)
    if existing is not None:
        await _keep_marked(flow, existing.state)
        return existing.state, False
    settings = resolve_settings(flow.settings.defaults, explicit=explicit)
    state = RunState(
        run_id=run_id,
        stage="file-ready",
        source=Source(file_id=file_id),
        settings=settings,
        created_at=_now(),
        file_id=file_id,
    )
    written = await create(flow, state, f"registered file {file_id}")
    if written is None:
        again = await load(flow, run_id)
        assert again is not None
        return again.state, False
    return written, True


async def record_bad_event(flow: Flow, raw: bytes, reason: str, *, function: str) -> RunState:
    """An event of unexpected shape still leaves a trace: a FAILED run keyed by the event's bytes."""
    run_id = "e" + hashlib.sha256(raw).hexdigest()[:15]
    existing = await load(flow, run_id)
    if existing is not None:
        return existing.state
    state = RunState(
        run_id=run_id,
        stage="failed",
        source=Source(),
        settings=RunSettings.from_defaults(flow.settings.defaults),
        created_at=_now(),
        error=RunError(reason=f"{function} got an event it cannot use: {reason}", code="InvalidEvent"),
    )
    await create(flow, state, f"failed: {state.error.reason if state.error else reason}")
    return state
