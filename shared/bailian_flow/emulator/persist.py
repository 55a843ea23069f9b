"""The emulator's registries across restarts: with an explicit `--data-dir`, a restarted emulator carries on.

OSS objects and uploaded file bodies already live on disk under the data directory; what lives in memory is the
registries of fine-tunes, deployments, imports, files, batches and responses, the creation counters and the
emulated clock. They are saved to `<data-dir>/registries.pickle` (0600, written atomically) shortly after any
request that may have changed them and on shutdown, and restored at start. The emulated clock resumes where it
stopped, so a job that was RUNNING is still RUNNING. OSS event notifications are not kept: like FC's, those not yet
delivered when the stack stopped are lost, and the pipeline's timer re-drives what they would have started.

Pickle because the records are the emulator's own dataclasses, written and read only by this process in the
user's own data directory (the same trust as the code itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from .state import STATE_KEY

log = logging.getLogger(__name__)

FILE_NAME = "registries.pickle"
FORMAT = 1
SAVE_DELAY = 0.5  # seconds: a burst of requests costs one save
# registry name -> (module, its app key's name, the attribute holding the records)
REGISTRIES = {
    "fine_tunes": ("fine_tunes", "STORE_KEY", "jobs"),
    "deployments": ("deployments", "STORE_KEY", "deployments"),
    "imports": ("custom_models", "STORE_KEY", "jobs"),
    "files": ("files", "NATIVE_FILES_KEY", "records"),
    "compat_files": ("compat_files", "COMPAT_FILES_KEY", "records"),
    "batches": ("batches", "BATCHES_KEY", "records"),
    "responses": ("responses", "STORE_KEY", "responses"),
}
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def _registries(app: web.Application) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, (module_name, key_name, attribute) in REGISTRIES.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        key = getattr(module, key_name)
        if key in app:
            found[name] = getattr(app[key], attribute)
    return found


def save(app: web.Application, path: Path) -> None:
    state = app[STATE_KEY]
    payload = {
        "format": FORMAT,
        "clock": state.clock.now(),
        "created": dict(state._created),
        "registries": _registries(app),
    }
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        _Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL).dump(payload)
    os.replace(temporary, path)


class _Pickler(pickle.Pickler):
    """A record's asyncio lock belongs to this process's event loop: the next process gets a fresh one."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, asyncio.Lock):
            return asyncio.Lock, ()
        return NotImplemented


def restore(app: web.Application, path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            payload = pickle.load(handle)
    except FileNotFoundError:
        return False
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        log.warning("cannot restore the emulator's state from %s (%s); starting empty", path, exc)
        return False
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        log.warning("%s has another format; starting empty", path)
        return False
    state = app[STATE_KEY]
    for name, records in _registries(app).items():
        records.update(payload["registries"].get(name, {}))
    state._created.update(payload.get("created", {}))
    behind = float(payload.get("clock", 0.0)) - state.clock.now()
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
