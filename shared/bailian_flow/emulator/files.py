"""Native files, ``/api/v1/files`` (bailian-api.md section 4).

Uploads are multipart with repeated ``files`` parts, an optional ``purpose`` and repeated ``descriptions``
(paired with the files by position). The dashscope SDK sends the form fields before the files, other clients
may not, so every part is streamed to disk first (capped at the largest limit) and the purpose-specific limit
is applied once the whole form is read. Files over their limit are reported in ``failed_uploads`` with
``BadRequest.TooLarge`` in an HTTP 200 answer, the way the reference shows it; so are files past the account's
quota (``BadRequest.TooMany`` / ``BadRequest.TooLarge``, see quotas.py). The list omits ``description`` when the
``native_descriptions_listed`` switch is off (behaviour.py).

``GET|POST /_emulator/files/limits`` reads or changes the per-purpose limits (bytes) so that tests can lower
them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from .blobs import (
    DEFAULT_SIZE_LIMITS,
    MB,
    Blob,
    BlobStore,
    BlobTooLarge,
    Buffer,
    ensure_size_limits,
    part_chunks,
    remove,
)
from .common import paged
from .errors import native_error, new_request_id
from .form_stream import FormReader, form_boundary
from .quotas import Quotas, add_usage, quotas
from .state import STATE_KEY

NATIVE_PURPOSES = ("fine-tune", "file-extract", "batch")
FIELD_LIMIT = 64 * 1024
REGION = "cn-beijing"


@dataclass
class NativeFile:
    file_id: str
    name: str
    description: str
    size: int
    md5: str
    purpose: str
    created_at: float
    path: Path

    def to_json(self, host: str, with_description: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "file_id": self.file_id,
            "name": self.name,
            "description": self.description,
            "size": self.size,
            "md5": self.md5,
            "gmt_create": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.created_at)),
            "url": f"http://{host}/api/v1/files/{self.file_id}/content",
            "region": REGION,
            "purpose": self.purpose,
        }
        if not with_description:
            del answer["description"]
        return answer


class NativeFiles:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.records: dict[str, NativeFile] = {}
        # Bytes stored, kept as records come and go (the quota check must not sum thousands of files per upload).
        self.stored_bytes = 0

    def add(self, record: NativeFile) -> None:
        self.records[record.file_id] = record
        self.stored_bytes += record.size

    def pop(self, file_id: str) -> NativeFile | None:
        record = self.records.pop(file_id, None)
        if record is not None:
            self.stored_bytes -= record.size
        return record

    def clear(self) -> None:
        self.records.clear()
        self.stored_bytes = 0
        self.blobs.clear()


NATIVE_FILES_KEY = web.AppKey("bailian_flow.emulator.native_files", NativeFiles)


class FieldTooLarge(Exception):
    pass


async def read_field(part: BodyPartReader, limit: int = FIELD_LIMIT) -> str:
    """A small text form field; refuses to buffer more than ``limit`` bytes."""
    return await read_text(part_chunks(part), part.name or "", limit)


async def read_text(chunks: AsyncIterable[Buffer], name: str, limit: int = FIELD_LIMIT) -> str:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise FieldTooLarge(name)
    return data.decode("utf-8", errors="replace")


@dataclass
class _Upload:
    name: str
    blob: Blob | None
    size: int


async def upload(request: web.Request) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        return native_error(400, "InvalidParameter", "Files must be uploaded as multipart/form-data.")
    files: NativeFiles = request.app[NATIVE_FILES_KEY]
    limits = ensure_size_limits(request.app)
    state = request.app[STATE_KEY]
    purpose = "fine-tune"
    descriptions: list[str] = []
    uploads: list[_Upload] = []
    try:
        # Our own streaming reader rather than `request.multipart()`: see form_stream for why (speed).
        reader = FormReader(request.content, form_boundary(request.headers.get("Content-Type", "")))
        while (part := await reader.next()) is not None:
            if part.headers.get("content-type", "").startswith("multipart/"):
                _discard(uploads)
                return native_error(400, "InvalidParameter", "Nested multipart bodies are not supported.")
            if part.name in ("files", "file"):
                name = part.filename or "file"
                try:
                    blob = await files.blobs.ingest(reader.chunks(), limit=max(limits.values()))
                    uploads.append(_Upload(name, blob, blob.size))
                except BlobTooLarge as exc:
                    uploads.append(_Upload(name, None, exc.size))
            elif part.name == "purpose":
                purpose = (await read_text(reader.chunks(), part.name)).strip()
            elif part.name in ("descriptions", "description"):
                descriptions.append(await read_text(reader.chunks(), part.name))
    except FieldTooLarge as exc:
        _discard(uploads)
        return native_error(400, "InvalidParameter", f"Form field {exc} is too large.")
    except ValueError as exc:
        _discard(uploads)
        return native_error(400, "InvalidParameter", f"Malformed multipart body: {exc}")
    if purpose not in NATIVE_PURPOSES:
        _discard(uploads)
        return native_error(
            400, "InvalidParameter", f"purpose must be one of {', '.join(NATIVE_PURPOSES)}, got {purpose!r}."
        )
    if not uploads:
        return native_error(400, "BadRequest.EmptyInput", "Required parameter files missing or empty.")
    limit = limits.get(purpose, DEFAULT_SIZE_LIMITS["fine-tune"])
    account = quotas(request.app)
    uploaded: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    for index, item in enumerate(uploads):
        refusal = _refusal(files, account, item, limit, purpose)
        if refusal is not None or item.blob is None:
            _discard([item])
            failed.append({"name": item.name, **(refusal or {})})
            continue
        record = NativeFile(
            file_id=str(uuid.uuid4()),
            name=item.name,
            description=descriptions[index] if index < len(descriptions) else "",
            size=item.blob.size,
            md5=item.blob.md5_hex,
            purpose=purpose,
            created_at=state.clock.now(),
            path=item.blob.path,
        )
        files.add(record)
        state.count_created("files")
        uploaded.append({"file_id": record.file_id, "name": record.name})
    return web.json_response(
        {"request_id": new_request_id(), "data": {"uploaded_files": uploaded, "failed_uploads": failed}}
    )


def _refusal(files: NativeFiles, account: Quotas, item: _Upload, limit: int, purpose: str) -> dict[str, str] | None:
    """Why one file of the form is not stored, as its ``failed_uploads`` entry wants it; None when it fits.

    The file management page (help.aliyun.com model-studio "百炼文件管理 API": 使用限制, 上传文件 → 返回示例) documents
    300 MB a file, 5 GB and 100 live files an account, and reports a file past them per file, in an HTTP 200.
    (The Wan fine-tune API reference allows a 1 GB .zip; the file page's 300 MB is kept, the stricter reading.)"""
    if item.blob is None or item.size > limit:
        return {
            "code": "BadRequest.TooLarge",
            "message": f"Out of space, the file exceeds the limit of {_mb(limit)} for {purpose}.",
        }
    if len(files.records) >= account.files:
        return {"code": "BadRequest.TooMany", "message": account.too_many_message(len(files.records))}
    if files.stored_bytes + item.size > account.file_bytes:
        return {"code": "BadRequest.TooLarge", "message": account.too_large_message(files.stored_bytes)}
    return None


def _mb(limit: int) -> str:
    return f"{limit / MB:g} MB" if limit >= MB else f"{limit} bytes"


def _discard(uploads: list[_Upload]) -> None:
    for item in uploads:
        if item.blob is not None:
            remove(item.blob.path)


async def list_files(request: web.Request) -> web.Response:
    files: NativeFiles = request.app[NATIVE_FILES_KEY]
    # Records are kept in creation order.
    state = request.app[STATE_KEY]
    records = [record for record in reversed(files.records.values()) if state.listed(record.created_at)]
    fields, listed = paged(request, records, 10, 100)
    described = state.behaviour.native_descriptions_listed
    data = {**fields, "files": [record.to_json(request.host, described) for record in listed]}
    return web.json_response({"request_id": new_request_id(), "data": data})


def _lookup(request: web.Request) -> NativeFile | None:
    files: NativeFiles = request.app[NATIVE_FILES_KEY]
    return files.records.get(request.match_info["file_id"])


def _not_found(request: web.Request) -> web.Response:
    return native_error(404, "NotFound", f"File {request.match_info['file_id']} not found.")


async def get_file(request: web.Request) -> web.Response:
    record = _lookup(request)
    if record is None:
        return _not_found(request)
    return web.json_response({"request_id": new_request_id(), "data": record.to_json(request.host)})


async def get_content(request: web.Request) -> web.StreamResponse:
    record = _lookup(request)
    if record is None:
        return _not_found(request)
    return web.FileResponse(record.path, headers={"Content-Type": "application/octet-stream"})


async def delete_file(request: web.Request) -> web.Response:
    files: NativeFiles = request.app[NATIVE_FILES_KEY]
    record = files.pop(request.match_info["file_id"])
    if record is None:
        return _not_found(request)
    remove(record.path)
    return web.json_response({"request_id": new_request_id()})


async def get_limits(request: web.Request) -> web.Response:
    return web.json_response(ensure_size_limits(request.app))


async def set_limits(request: web.Request) -> web.Response:
    """Body ``{"fine-tune": bytes, ...}``: change the named limits, keep the others."""
    try:
        body = await request.json()
    except ValueError:
        return native_error(400, "InvalidParameter", "Body must be JSON.")
    if not isinstance(body, dict) or not all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in body.values()
    ):
        return native_error(400, "InvalidParameter", 'Body must be {"<purpose>": <bytes>, ...}.')
    limits = ensure_size_limits(request.app)
    limits.update(body)
    return web.json_response(limits)


def setup(app: web.Application) -> None:
    state = app[STATE_KEY]
    files = NativeFiles(BlobStore(state.data_dir / "files"))
    app[NATIVE_FILES_KEY] = files
    limits = ensure_size_limits(app)

    def reset() -> None:
        files.clear()
        limits.clear()
        limits.update(DEFAULT_SIZE_LIMITS)

    state.file_exists = files.records.__contains__

    def file_name(file_id: str) -> str | None:
        record = files.records.get(file_id)
        return record.name if record is not None else None

    state.file_name = file_name
    state.register_live("files", lambda: len(files.records))
    add_usage(app, "files", lambda: len(files.records))
    add_usage(app, "file_bytes", lambda: files.stored_bytes)
    state.add_reset_hook(reset)
    app.router.add_post("/api/v1/files", upload)
    app.router.add_get("/api/v1/files", list_files)
    app.router.add_get("/api/v1/files/{file_id}", get_file)
    app.router.add_get("/api/v1/files/{file_id}/content", get_content)
    app.router.add_delete("/api/v1/files/{file_id}", delete_file)
    app.router.add_get("/_emulator/files/limits", get_limits)
    app.router.add_post("/_emulator/files/limits", set_limits)
