"""On-disk blob store shared by native files, compatible-mode files, batch outputs and OSS objects.

Uploaded bytes are streamed to a temporary file chunk by chunk (size and MD5 computed on the way) and renamed
into place, so a crash never leaves a half-written blob behind a record and no upload is held in memory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aiohttp import BodyPartReader, web

CHUNK_SIZE = 256 * 1024
MB = 1024 * 1024

# Per-purpose upload limits in bytes (bailian-api.md sections 4 and 5). Tests lower them through
# `POST /_emulator/files/limits`; a reset restores these defaults.
DEFAULT_SIZE_LIMITS: dict[str, int] = {
    "fine-tune": 300 * MB,
    "batch": 500 * MB,
    "file-extract": 150 * MB,
}


class BlobTooLarge(Exception):
    """The stream was longer than the allowed size; nothing was kept."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes exceed the limit of {limit} bytes")
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class Blob:
    path: Path
    size: int
    md5_hex: str

    @property
    def etag(self) -> str:
        """OSS style: the upper-case MD5 hex, unquoted."""
        return self.md5_hex.upper()

    @property
    def md5_base64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.md5_hex)).decode()


class BlobWriter:
    """Synchronous writes to a temporary file, hashed on the way; :meth:`BlobStore.commit` publishes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    def close(self) -> str:
        self._file.close()
        return self._md5.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    """Blobs live in ``root`` under random names; records elsewhere point at them by path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def new_path(self) -> Path:
        name = uuid.uuid4().hex
        return self.root / name[:2] / name

    async def ingest(
        self,
        chunks: AsyncIterable[bytes],
        *,
        limit: int | None = None,
        drain_on_overflow: bool = True,
        target: Path | None = None,
    ) -> Blob:
        """Stream ``chunks`` into a new blob (at ``target`` if given, else a fresh path).

        Past ``limit`` bytes the data is discarded and :class:`BlobTooLarge` raised; with
        ``drain_on_overflow`` the rest of the stream is still consumed so that a multipart reader can go on to
        the next part.
        """
        writer = self.open_writer()
        overflow = False
        try:
            async for chunk in chunks:
                if overflow:
                    writer.size += len(chunk)
                    continue
                if limit is not None and writer.size + len(chunk) > limit:
                    overflow = True
                    writer.size += len(chunk)
                    if not drain_on_overflow:
                        break
                    continue
                writer.write(chunk)
        except BaseException:
            writer.discard()
            raise
        if overflow:
            writer.discard()
            raise BlobTooLarge(writer.size, limit or 0)
        return self.commit(writer, target)

    def open_writer(self) -> BlobWriter:
        """A writer for synchronous producers (batch output runs in a worker thread)."""
        return BlobWriter(self._tmp / uuid.uuid4().hex)

    def commit(self, writer: BlobWriter, target: Path | None = None) -> Blob:
        """Close ``writer`` and rename its file into place (atomic on one filesystem)."""
        md5_hex = writer.close()
        final = target if target is not None else self.new_path()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(writer.path, final)
        return Blob(path=final, size=writer.size, md5_hex=md5_hex)

    async def write_bytes(self, data: bytes) -> Blob:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.ingest(one())

    def clear(self) -> None:
        """Remove every blob (emulator reset)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _read_range(path: Path, start: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(start)
        return handle.read(length)


async def iter_file(path: Path, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
    """Yield ``path[start:end]`` in chunks read off the event loop."""
    stop = (await asyncio.to_thread(os.path.getsize, path)) if end is None else end
    position = start
    while position < stop:
        length = min(CHUNK_SIZE, stop - position)
        chunk = await asyncio.to_thread(_read_range, path, position, length)
        if not chunk:
            break
        position += len(chunk)
        yield chunk


async def stream_file(
    request: web.Request, response: web.StreamResponse, path: Path, start: int = 0, end: int | None = None
) -> web.StreamResponse:
    """Send ``path[start:end]`` through an already configured response."""
    await response.prepare(request)
    async for chunk in iter_file(path, start, end):
        await response.write(chunk)
    await response.write_eof()
    return response


SIZE_LIMITS_KEY = web.AppKey("bailian_flow.emulator.size_limits", dict)
"""Per-purpose upload limits in bytes, shared by native and compatible-mode files."""


def ensure_size_limits(app: web.Application) -> dict[str, int]:
    if SIZE_LIMITS_KEY not in app:
        app[SIZE_LIMITS_KEY] = dict(DEFAULT_SIZE_LIMITS)
    limits: dict[str, int] = app[SIZE_LIMITS_KEY]
    return limits


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """The decoded bytes of one multipart part, chunk by chunk."""
    while chunk := await part.read_chunk(CHUNK_SIZE):
        yield chunk


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        yield chunk
