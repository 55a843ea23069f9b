"""Import-only runs: custom weights already in OSS → import → deploy, without a fine-tune.

Started by `POST /runs` with `{"import": {...}, "settings": {...}}`, or by a marker object
`<imports prefix>**/<name>.import.yaml` holding the same two sections. Either way the run (kind `import`) begins
at `job-succeeded` with `on_success.action: import`: that entry's own OSS event hands it to on_success, which
imports under the display name derived from the run id and deploys, under the same exactly-once rules as every
other run (a duplicate start maps to the same run id; a dropped import create is found by its name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bailian_flow.pipeline.protocol import offered
from bailian_flow.pipeline.protocol.inputs import MAX_SIDECAR_BYTES
from bailian_flow.pipeline.protocol.layout import IMPORT_SUFFIX
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z
from bailian_flow.pipeline.protocol.settings import RunSettings, SettingsError, parse_sidecar, resolve_settings
from bailian_flow.pipeline.protocol.state import RunError, RunState, Source
from bailian_flow.pipeline.protocol.transitions import create, load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import bare_etag

# A marker holds two short sections, bounded like a settings sidecar; checked before reading it.
MAX_MARKER_BYTES = MAX_SIDECAR_BYTES
SECTIONS = frozenset({"import", "settings"})


def is_import_marker(flow: Flow, key: str) -> bool:
    return key.startswith(flow.settings.imports_prefix) and key.endswith(IMPORT_SUFFIX)


def import_settings(flow: Flow, body: Mapping[str, Any], *, object_key: str | None = None) -> RunSettings:
    """The run settings of an import request: its `settings` with `on_success` set to import its `import`."""
    unknown = sorted(set(body) - SECTIONS - {"kind"})
    if unknown:
        raise SettingsError(f"unknown section {unknown[0]}", object_key=object_key, field=unknown[0])
    spec, settings = body.get("import"), body.get("settings") or {}
    if not isinstance(spec, Mapping):
        raise SettingsError("import must be a mapping with object_key", object_key=object_key, field="import")
    if not isinstance(settings, Mapping):
        raise SettingsError("settings must be a mapping", object_key=object_key, field="settings")
    on_success = settings.get("on_success") or {}
    if not isinstance(on_success, Mapping):
        raise SettingsError("on_success must be a mapping", object_key=object_key, field="settings.on_success")
    explicit = {**settings, "on_success": {**on_success, "action": "import", "import": dict(spec)}}
    try:
        settings = resolve_settings(flow.settings.defaults, explicit=explicit, object_key=object_key)
        # Import then PTU, or a region that cannot deploy it: refused before the import is paid
        # (service-contract.md#C22, #C27).
        offered.check(flow.settings.region, "import", settings, object_key=object_key)
        return settings
    except SettingsError as exc:
        # Name the field as the request spells it: `import.object_key`, not `on_success.import.object_key`.
        field = exc.field or ""
        if field.startswith("on_success.import"):
            field = field.removeprefix("on_success.")
        raise SettingsError(exc.reason, object_key=exc.object_key, field=field or None) from None


def request_run_id(body: Mapping[str, Any]) -> str:
    """The same import request, sent twice, names the same run."""
    canonical = json.dumps({key: body.get(key) for key in sorted(SECTIONS)}, sort_keys=True, separators=(",", ":"))
    return run_id_for("bailian-import", canonical, "")


async def open_import_run(
    flow: Flow, run_id: str, source: Source, body: Mapping[str, Any], *, object_key: str | None = None
) -> tuple[RunState, bool]:
    """Find or create an import run. A bad request is a FAILED run naming the field (the marker's case)."""
    existing = await load(flow, run_id)
    if existing is not None:
        return existing.state, False
    error: RunError | None = None
    try:
        settings = import_settings(flow, body, object_key=object_key)
    except SettingsError as exc:
        settings = RunSettings.from_defaults(flow.settings.defaults)
        error = RunError(reason=exc.reason, object=exc.object_key, field=exc.field, code="InvalidSettings")
    return await _create(flow, run_id, source, settings, error)


async def _create(
    flow: Flow, run_id: str, source: Source, settings: RunSettings, error: RunError | None
) -> tuple[RunState, bool]:
    weights = settings.on_success.import_
    state = RunState(
        run_id=run_id,
        kind="import",
        stage="failed" if error else "job-succeeded",
        source=source,
        settings=settings,
        created_at=iso_z(),
        error=error,
    )
    if error:
        changed = f"failed: {error.reason}"
    else:
        assert weights is not None
        changed = f"import requested: weights {weights.object_key} onto {weights.model_name or settings.model}"
    written = await create(flow, state, changed)
    if written is None:
        again = await load(flow, run_id)
        assert again is not None
        return again.state, False
    return written, True


async def open_run_for_marker(flow: Flow, bucket: str, key: str, etag: str | None) -> RunState | None:
    """The run of one import marker object (None: the object is gone or was overwritten since the event)."""
    info = await flow.store.head(key)
    if info is None or (etag and bare_etag(info.etag).upper() != bare_etag(etag).upper()):
        return None
    run_id = run_id_for(bucket, key, bare_etag(info.etag).upper())
    source = Source(bucket=bucket, key=key, etag=bare_etag(info.etag).upper(), size=info.size)
    existing = await load(flow, run_id)
    if existing is not None:
        return existing.state
    body: Mapping[str, Any] = {}
    error: RunError | None = None
    if info.size > MAX_MARKER_BYTES:
        reason = f"an import marker holds at most {MAX_MARKER_BYTES} bytes; {key} has {info.size}"
        error = RunError(reason=reason, object=key, code="InvalidSettings")
    else:
        try:
            body = parse_sidecar(await flow.store.get(key) or b"", object_key=key)
        except SettingsError as exc:
            error = RunError(reason=exc.reason, object=key, field=exc.field, code="InvalidSettings")
    if error is not None:
        state, _ = await _create(flow, run_id, source, RunSettings.from_defaults(flow.settings.defaults), error)
        return state
    state, _ = await open_import_run(flow, run_id, source, body, object_key=key)
    return state


async def open_from_event(
    flow: Flow, bucket: str, key: str, etag: str | None, *, kind: str = "import", first_stage: str = ""
) -> tuple[RunState | None, bool]:
    """The kind's opener (`spec.py`): the marker's run, whose first entry (`job-succeeded`, or a FAILED one) hands
    it on by its own event; `first_stage` does not apply."""
    existed = await load(flow, run_id_for(bucket, key, bare_etag(etag).upper())) if etag else None
    state = await open_run_for_marker(flow, bucket, key, etag)
    return state, state is not None and existed is None


async def start_request(flow: Flow, body: dict[str, Any]) -> tuple[RunState, bool]:
    """An import-only run from a REST body; the request's own mistakes are the caller's to fix now (SettingsError:
    a 400, no run)."""
    settings = import_settings(flow, body)
    weights = settings.on_success.import_
    bucket = (weights.bucket if weights else None) or flow.settings.bucket
    return await open_import_run(flow, request_run_id(body), Source(bucket=bucket), body)
