"""On-disk blob store shared by native files, compatible-mode files, batch outputs and OSS objects.

Uploaded bytes are streamed to a temporary file chunk by chunk (size and MD5 computed on the way, in a worker
thread) and renamed into place, so a crash never leaves a half-written blob behind a record and no upload is
held in memory.
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

CHUNK_SIZE = 1024 * 1024
# Ingest hands the worker thread this much at a time: fewer thread hops, still a bounded amount held.
INGEST_BATCH = 4 * 1024 * 1024
Buffer = bytes | bytearray | memoryview
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

    def write(self, chunk: Buffer) -> None:
        self._file.write(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    def write_all(self, chunks: list[Buffer]) -> None:
        for chunk in chunks:
            self.write(chunk)

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
        chunks: AsyncIterable[Buffer],
        *,
        limit: int | None = None,
        drain_on_overflow: bool = True,
        target: Path | None = None,
    ) -> Blob:
        """Stream ``chunks`` into a new blob (at ``target`` if given, else a fresh path).

        Chunks are gathered into batches of about :data:`INGEST_BATCH`, each hashed and written in a worker
        thread while the event loop receives the next: MD5 and the disk never hold up the loop, and at most
        two batches are held. Past ``limit`` bytes the data is discarded and :class:`BlobTooLarge` raised;
        with ``drain_on_overflow`` the rest of the stream is still consumed so that a multipart reader can go
        on to the next part.
        """
        writer = self.open_writer()
        loop = asyncio.get_running_loop()
        in_flight: asyncio.Future[None] | None = None
        batch: list[Buffer] = []
        batched = 0
        size = 0
        overflow = False
        try:
            async for chunk in chunks:
                size += len(chunk)
                if overflow:
                    continue
                if limit is not None and size > limit:
                    overflow = True
                    if not drain_on_overflow:
                        break
                    continue
                batch.append(chunk)
                batched += len(chunk)
                if batched >= INGEST_BATCH:
                    if in_flight is not None:
                        await in_flight
                    in_flight = loop.run_in_executor(None, writer.write_all, batch)
                    batch, batched = [], 0
            if batch and not overflow:
                if in_flight is not None:
                    await in_flight
                in_flight = loop.run_in_executor(None, writer.write_all, batch)
            if in_flight is not None:
                await in_flight
        except BaseException:
            _discard_after(writer, in_flight)
            raise
        if overflow:
            writer.discard()
            raise BlobTooLarge(size, limit or 0)
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

    def clear(self) -> None:
        """Remove every blob (emulator reset)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)


def _discard_after(writer: BlobWriter, in_flight: asyncio.Future[None] | None) -> None:
    """Drop a half-written blob once the worker thread is done with it (it may still be writing)."""

    def discard(done: asyncio.Future[None] | None = None) -> None:
        if done is not None and not done.cancelled():
            done.exception()  # retrieved: a failed write is superseded by the error being raised
        writer.discard()

    if in_flight is None or in_flight.done():
        discard(in_flight)
    else:
        in_flight.add_done_callback(discard)


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
