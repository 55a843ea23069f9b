"""The emulator's registries across restarts: with an explicit `--data-dir`, a restarted emulator carries on.

OSS objects and uploaded file bodies already live on disk under the data directory; what lives in memory is the
registries of fine-tunes, deployments, imports, files, batches and responses, the creation counters and the
emulated clock. They are saved to `<data-dir>/registries.json` (0600, written atomically) shortly after any
request that may have changed them and on shutdown, and restored at start. The emulated clock resumes where it
stopped, so a job that was RUNNING is still RUNNING. OSS event notifications are not kept: like FC's, those not yet
delivered when the stack stopped are lost, and the pipeline's timer re-drives what they would have started.

JSON, not pickle: loading a pickle runs whatever code its writer chose, and a data directory is only a directory.
Each registry's records are the emulator's own dataclasses, dumped and validated by pydantic; a file of another
format version, one that does not validate, or one whose records point at files outside the data directory is
set aside with a one-line warning and the emulator starts empty. An old `registries.pickle` is never opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from .state import STATE_KEY

log = logging.getLogger(__name__)

FILE_NAME = "registries.json"
# What earlier versions wrote; never loaded (see the module's docstring), only mentioned.
OLD_FILE_NAMES = ("registries.pickle",)
# 3: fine-tune jobs keep the hyper-parameters sent apart from those used, and their scripted outcome.
FORMAT = 3
SAVE_DELAY = 0.5  # seconds: a burst of requests costs one save
# registry name -> (module, its app key's name, the attribute holding the records, the records' class)
REGISTRIES = {
    "fine_tunes": ("fine_tunes", "STORE_KEY", "jobs", "fine_tune_jobs.FineTuneJob"),
    "deployments": ("deployments", "STORE_KEY", "deployments", "deployments.Deployment"),
    "imports": ("custom_models", "STORE_KEY", "jobs", "custom_models.ImportJob"),
    "files": ("files", "NATIVE_FILES_KEY", "records", "files.NativeFile"),
    "compat_files": ("compat_files", "COMPAT_FILES_KEY", "records", "compat_files.CompatFile"),
    "batches": ("batches", "BATCHES_KEY", "records", "batches.BatchRecord"),
    "responses": ("responses", "STORE_KEY", "responses", "responses.StoredResponse"),
}
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


class _Saved(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int
    clock: float
    created: dict[str, int]
    registries: dict[str, dict[str, Any]]


class _Registry:
    """One registry of the running app: its records, and how they become JSON and back."""

    def __init__(self, records: dict[str, Any], record_type: type) -> None:
        self.records = records
        # A batch's asyncio lock belongs to this process's event loop: not saved, a fresh one on restore.
        self.process_only = {f.name for f in dataclasses.fields(record_type) if f.metadata.get("persist") is False}
        self.adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(
            dict[str, record_type],  # type: ignore[valid-type]
            config=ConfigDict(arbitrary_types_allowed=True),
        )

    def dump(self) -> Any:
        exclude = {"__all__": self.process_only} if self.process_only else None
        return self.adapter.dump_python(self.records, mode="json", exclude=exclude)

    def load(self, data: Any) -> dict[str, Any]:
        return self.adapter.validate_python(data)


def _registries(app: web.Application) -> dict[str, _Registry]:
    found: dict[str, _Registry] = {}
    for name, (module_name, key_name, attribute, record_type) in REGISTRIES.items():
        key = getattr(importlib.import_module(f"{__package__}.{module_name}"), key_name)
        if key in app:
            type_module, _, type_name = record_type.rpartition(".")
            cls = getattr(importlib.import_module(f"{__package__}.{type_module}"), type_name)
            found[name] = _Registry(getattr(app[key], attribute), cls)
    return found


def save(app: web.Application, path: Path) -> None:
    state = app[STATE_KEY]
    payload = {
        "format": FORMAT,
        "clock": state.clock.now(),
        "created": dict(state._created),
        "registries": {name: registry.dump() for name, registry in _registries(app).items()},
    }
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, separators=(",", ":"))
    os.replace(temporary, path)


def _paths(value: Any) -> list[Path]:
    """Every path inside a restored record (file bodies, batch outputs)."""
    if isinstance(value, Path):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [path for f in dataclasses.fields(value) for path in _paths(getattr(value, f.name))]
    if isinstance(value, dict):
        return [path for item in value.values() for path in _paths(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in _paths(item)]
    return []


def _read(path: Path, registries: dict[str, _Registry]) -> tuple[_Saved, dict[str, dict[str, Any]]] | str:
    """The saved state, or why it cannot be used (a short reason for a one-line warning)."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return f"unreadable ({type(exc).__name__})"
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        return f"format {found!r}, this emulator writes {FORMAT}"
    try:
        saved = _Saved.model_validate(raw)
        restored = {name: registry.load(saved.registries.get(name, {})) for name, registry in registries.items()}
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid at {where}: {first['msg']}"
    root = path.parent.resolve()
    for records in restored.values():
        for found in _paths(records):
            if not found.resolve().is_relative_to(root):
                return f"a record points outside {root}"
    return saved, restored


def restore(app: web.Application, path: Path) -> bool:
    if not path.exists():
        for old in OLD_FILE_NAMES:
            if (path.parent / old).exists():
                log.warning("ignoring %s (an older emulator's format, never loaded); starting empty", path.parent / old)
        return False
    registries = _registries(app)
    got = _read(path, registries)
    if isinstance(got, str):
        # Kept for a look, out of the way of the next save.
        rejected = path.with_name(path.name + ".rejected")
        with contextlib.suppress(OSError):
            os.replace(path, rejected)
        log.warning("ignoring %s (%s; kept as %s); starting empty", path, got, rejected.name)
        return False
    saved, restored = got
    for name, records in restored.items():
        registries[name].records.update(records)
    state = app[STATE_KEY]
    state._created.update(saved.created)
    behind = saved.clock - state.clock.now()
    if behind > 0:  # emulated time never goes back: jobs resume where they were
        state.clock.advance(behind)
    return True


def enable(app: web.Application, data_dir: Path) -> bool:
    """Restore now, then keep saving. Returns whether anything was restored."""
    path = data_dir / FILE_NAME
    restored = restore(app, path)
    dirty = asyncio.Event()

    @web.middleware
    async def mark_dirty(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            if request.method not in _READ_ONLY:
                dirty.set()

    async def saver(app: web.Application) -> Any:
        async def loop() -> None:
            while True:
                await dirty.wait()
                await asyncio.sleep(SAVE_DELAY)
                dirty.clear()
                save(app, path)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        save(app, path)

    app.middlewares.append(mark_dirty)
    app.cleanup_ctx.append(saver)
    return restored
