"""Where runs begin: a dataset object (from its OSS event or the REST API), a registered file, or bad input.

The run id is derived from the source (bucket, key, ETag), so every delivery of the same upload maps to the same
run and the first entry's create-only write makes exactly one of them its author.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Literal

from bailian_flow.pipeline.protocol import inputs, offered
from bailian_flow.pipeline.protocol.kinds import spec_of, state_model
from bailian_flow.pipeline.protocol.layout import SIDECAR_SUFFIX
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z
from bailian_flow.pipeline.protocol.settings import RunSettings, SettingsError, parse_sidecar, resolve_settings
from bailian_flow.pipeline.protocol.state import RunError, RunKind, RunState, Source
from bailian_flow.pipeline.protocol.transitions import create, load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import StoreError, bare_etag

log = logging.getLogger("bailian_flow.pipeline")


def _normal_etag(etag: str | None) -> str:
    # Events carry ETags bare, HEAD and listings quoted; run ids and comparisons use one spelling.
    return bare_etag(etag).upper()


async def _keep_marked(flow: Flow, state: RunState) -> None:
    """A redelivery of an open run re-marks it: runs written before markers came first may have lost theirs."""
    if not state.terminal:
        await flow.runs.mark_active(state.run_id)


async def read_sidecar(flow: Flow, key: str) -> tuple[str, dict[str, Any] | None]:
    """The key of `key`'s settings file and what it holds (None when there is none)."""
    sidecar_key = key + SIDECAR_SUFFIX
    try:
        raw = await flow.store.get(sidecar_key)
    except StoreError as exc:
        if exc.status != 403:
            raise
        raise SettingsError(_forbidden(sidecar_key), object_key=sidecar_key, field="sidecar") from None
    return sidecar_key, (parse_sidecar(raw, object_key=sidecar_key) if raw is not None else None)


async def settings_for(
    flow: Flow, key: str, metadata: Mapping[str, str], explicit: Mapping[str, Any] | None
) -> RunSettings:
    sidecar_key, sidecar = await read_sidecar(flow, key)
    settings = resolve_settings(
        flow.settings.defaults,
        metadata=metadata,
        sidecar=sidecar,
        explicit=explicit,
        object_key=key,
        sidecar_key=sidecar_key,
    )
    if settings.validation_key is not None:
        # The validation file is read like the dataset: the same bounds, and it must be a dataset too.
        try:
            canonical = inputs.object_key(
                settings.validation_key, prefix=flow.settings.datasets_prefix, field="validation_key"
            )
        except inputs.InputError as exc:
            blame = sidecar_key if sidecar and "validation_key" in sidecar else key
            raise SettingsError(exc.message, object_key=blame, field="validation_key") from None
        settings = settings.model_copy(update={"validation_key": canonical})
    return settings


def _forbidden(key: str) -> str:
    return f"the function's role may not read {key} (OSS answered 403 AccessDenied)"


async def settings_update(
    flow: Flow, kind: RunKind, key: str, metadata: Mapping[str, str], explicit: Mapping[str, Any] | None
) -> dict[str, Any]:
    """An object's settings (metadata < sidecar < explicit) as fields of its run's state: the kind's own
    (`settings_for` hook) or the model settings every deploying kind shares."""
    hook = spec_of(kind).hook("settings_for")
    if hook is not None:
        update: dict[str, Any] = await hook(flow, key, metadata, explicit)
        return update
    return {"settings": await settings_for(flow, key, metadata, explicit)}


async def open_run_for_object(
    flow: Flow,
    bucket: str,
    key: str,
    etag: str | None,
    *,
    explicit: Mapping[str, Any] | None = None,
    first_stage: Literal["received", "requested"] = "received",
    kind: RunKind = "fine-tune",
    field: str = "key",
) -> tuple[RunState | None, bool]:
    """Find or create the run of one uploaded object. Returns (state, created); state None = nothing to do.

    `received` when the caller goes on to act itself (on_upload); `requested` when it hands over to on_upload
    through that entry's event (the REST API, the timer's scan). `field` names the key in a FAILED run's error.
    """
    try:
        info = await flow.store.head(key)
    except StoreError as exc:
        if exc.status != 403:
            raise
        # Retrying cannot help until the role changes: a FAILED run says so (FC would retry an exception).
        return await _record_forbidden(flow, bucket, key, field, kind)
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
    fields: dict[str, Any] = {"settings": RunSettings.from_defaults(flow.settings.defaults)}
    try:
        fields.update(await settings_update(flow, kind, key, info.metadata or {}, explicit))
        # Before anything is paid: a region or plan the service does not offer this run (service-contract.md#C13).
        offered.check(flow.settings.region, kind, fields.get("settings"), object_key=key)
    except SettingsError as exc:
        error = RunError(reason=exc.reason, object=exc.object_key, field=exc.field, code="InvalidSettings")
    state = state_model(kind)(
        run_id=run_id,
        kind=kind,
        stage="failed" if error else first_stage,
        source=source,
        created_at=iso_z(),
        error=error,
        **fields,
    )
    return await _create_or_load(flow, state, f"failed: {error.reason}" if error else f"{first_stage} {key}")


async def _record_forbidden(
    flow: Flow, bucket: str, key: str, field: str, kind: RunKind
) -> tuple[RunState | None, bool]:
    # No ETag can be read: the run is named by the key alone, so every request for it finds the same run.
    run_id = run_id_for(bucket, key, "ACCESS-DENIED")
    existing = await load(flow, run_id)
    if existing is not None:
        return existing.state, False
    error = RunError(reason=_forbidden(key), object=key, field=field, code="AccessDenied")
    state = state_model(kind)(
        run_id=run_id,
        kind=kind,
        stage="failed",
        source=Source(bucket=bucket, key=key),
        settings=RunSettings.from_defaults(flow.settings.defaults),
        created_at=iso_z(),
        error=error,
    )
    return await _create_or_load(flow, state, f"failed: {error.reason}")


async def _create_or_load(flow: Flow, state: RunState, changed: str) -> tuple[RunState | None, bool]:
    """Create the run's first entry; a rival that created it first wins, and its state is the answer."""
    written = await create(flow, state, changed)
    if written is None:
        again = await load(flow, state.run_id)
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
    # No run for what the region or plan cannot do (service-contract.md#C13, #C22): the caller answers 400.
    offered.check(flow.settings.region, "fine-tune", settings)
    state = RunState(
        run_id=run_id,
        stage="file-ready",
        source=Source(file_id=file_id),
        settings=settings,
        created_at=iso_z(),
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
        created_at=iso_z(),
        error=RunError(reason=f"{function} got an event it cannot use: {reason}", code="InvalidEvent"),
    )
    await create(flow, state, f"failed: {state.error.reason if state.error else reason}")
    return state
