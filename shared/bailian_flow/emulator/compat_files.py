"""OpenAI-compatible files, ``/compatible-mode/v1/files`` (bailian-api.md section 5).

Uploads are multipart with one ``file`` part and a ``purpose`` (``batch``, ``file-extract``, ``fine-tune``),
in either order. Batch results are compatible files too, with purpose ``batch_output``; :func:`add_file`
is how the batches module creates them. Lists follow the OpenAI cursor shape (``after`` = the last id seen).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .blobs import Blob, BlobStore, BlobTooLarge, ensure_size_limits, remove
from .cursor import cursor_limit, cursor_page
from .errors import compat_error
from .files import FieldTooLarge, read_text
from .form_stream import FormReader, form_boundary
from .state import STATE_KEY

UPLOAD_PURPOSES = ("batch", "file-extract", "fine-tune")
ID_PREFIXES = {"batch": "file-batch", "file-extract": "file-fe", "fine-tune": "file-ft"}


@dataclass
class CompatFile:
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    path: Path
    md5: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class CompatFiles:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.records: dict[str, CompatFile] = {}

    def clear(self) -> None:
        self.records.clear()
        self.blobs.clear()


COMPAT_FILES_KEY = web.AppKey("bailian_flow.emulator.compat_files", CompatFiles)


def compat_files(app: web.Application) -> CompatFiles:
    """The store, created on first use so that the batches module does not depend on setup order."""
    if COMPAT_FILES_KEY not in app:
        app[COMPAT_FILES_KEY] = CompatFiles(BlobStore(app[STATE_KEY].data_dir / "compat_files"))
    return app[COMPAT_FILES_KEY]


def add_file(app: web.Application, blob: Blob, filename: str, purpose: str, id_prefix: str) -> CompatFile:
    state = app[STATE_KEY]
    record = CompatFile(
        id=f"{id_prefix}-{uuid.uuid4().hex}",
        bytes=blob.size,
        created_at=int(state.clock.now()),
        filename=filename,
        purpose=purpose,
        path=blob.path,
        md5=blob.md5_hex,
    )
    compat_files(app).records[record.id] = record
    state.count_created("compat_files")
    return record


def _invalid(message: str, param: str | None = None) -> web.Response:
    return compat_error(400, "invalid_parameter_error", message, param=param)


async def upload(request: web.Request) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        return _invalid("Files must be uploaded as multipart/form-data.")
    store = compat_files(request.app)
    limits = ensure_size_limits(request.app)
    purpose: str | None = None
    blob: Blob | None = None
    filename = "file"
    too_large: int | None = None
    try:
        # The streaming reader the native upload uses (form_stream): aiohttp's part reader scans a large body
        # a few KiB at a time, which made the emulator, not the client, the cost of every batch upload.
        reader = FormReader(request.content, form_boundary(request.headers.get("Content-Type", "")))
        while (part := await reader.next()) is not None:
            if part.headers.get("content-type", "").startswith("multipart/"):
                if blob is not None:
                    remove(blob.path)
                return _invalid("Nested multipart bodies are not supported.")
            if part.name == "file" and blob is None and too_large is None:
                filename = part.filename or "file"
                try:
                    blob = await store.blobs.ingest(reader.chunks(), limit=max(limits.values()))
                except BlobTooLarge as exc:
                    too_large = exc.size
            elif part.name == "purpose":
                purpose = (await read_text(reader.chunks(), part.name)).strip()
    except (FieldTooLarge, ValueError) as exc:
        if blob is not None:
            remove(blob.path)
        return _invalid(f"Malformed multipart body: {exc}")
    if purpose not in UPLOAD_PURPOSES:
        if blob is not None:
            remove(blob.path)
        return _invalid(f"purpose must be one of {', '.join(UPLOAD_PURPOSES)}, got {purpose!r}.", "purpose")
    limit = limits.get(purpose, max(limits.values()))
    size = blob.size if blob is not None else too_large
    if size is None:
        return _invalid("Required parameter file missing.", "file")
    if blob is None or size > limit:
        if blob is not None:
            remove(blob.path)
        return compat_error(
            413,
            "BadRequest.TooLarge",
            f"File of {size} bytes exceeds the {limit} bytes allowed for {purpose}.",
        )
    record = add_file(request.app, blob, filename, purpose, ID_PREFIXES[purpose])
    return web.json_response(record.to_json())


async def list_files(request: web.Request) -> web.Response:
    store = compat_files(request.app)
    limit = cursor_limit(request, 2000)
    order = request.query.get("order", "desc")
    purpose = request.query.get("purpose")
    if order not in ("asc", "desc"):
        return _invalid("order must be asc or desc.", "order")
    # Insertion order is creation order; ids break created_at ties so that the cursor is stable.
    records = [r for r in store.records.values() if purpose is None or r.purpose == purpose]
    if order == "desc":
        records.reverse()
    after = request.query.get("after")
    listed, cursor = cursor_page(records, attrgetter("id"), after, limit, f"No file found with id {after!r}.")
    return web.json_response({"object": "list", "data": [r.to_json() for r in listed], **cursor})


def _lookup(request: web.Request) -> CompatFile | None:
    return compat_files(request.app).records.get(request.match_info["file_id"])


def _not_found(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    return compat_error(404, "NotFound", f"No such File object: {file_id}", param="id")


async def get_file(request: web.Request) -> web.Response:
    record = _lookup(request)
    if record is None:
        return _not_found(request)
    return web.json_response(record.to_json())


async def get_content(request: web.Request) -> web.StreamResponse:
    record = _lookup(request)
    if record is None:
        return _not_found(request)
    disposition = f"attachment; filename*=UTF-8''{quote(record.filename, safe='')}"
    return web.FileResponse(
        record.path,
        headers={"Content-Type": "application/octet-stream", "Content-Disposition": disposition},
    )


async def delete_file(request: web.Request) -> web.Response:
    record = compat_files(request.app).records.pop(request.match_info["file_id"], None)
    if record is None:
        return _not_found(request)
    remove(record.path)
    return web.json_response({"object": "file", "deleted": True, "id": record.id})


def setup(app: web.Application) -> None:
    state = app[STATE_KEY]
    store = compat_files(app)
    ensure_size_limits(app)
    native_exists = state.file_exists

    def file_exists(file_id: str) -> bool:
        # Fine-tunes accept native ids; compatible-mode fine-tune files are accepted as well.
        return native_exists(file_id) or file_id in store.records

    state.file_exists = file_exists
    native_name = state.file_name

    def file_name(file_id: str) -> str | None:
        record = store.records.get(file_id)
        return record.filename if record is not None else native_name(file_id)

    state.file_name = file_name
    state.register_live("compat_files", lambda: len(store.records))
    state.add_reset_hook(store.clear)
    prefix = "/compatible-mode/v1/files"
    app.router.add_post(prefix, upload)
    app.router.add_get(prefix, list_files)
    app.router.add_get(prefix + "/{file_id}", get_file)
    app.router.add_get(prefix + "/{file_id}/content", get_content)
    app.router.add_delete(prefix + "/{file_id}", delete_file)
