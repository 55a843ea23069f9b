"""Upload bodies streamed in constant memory: a path, bytes or an async byte iterator.

Whatever the size, at most one chunk is held at a time: a path is read chunk by chunk in a worker thread,
an async iterator (say an OSS object being downloaded) is passed through as it arrives, and aiohttp's writer
waits for the socket to drain before asking for the next chunk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CHUNK_SIZE", "ProgressCallback", "UploadSource", "UploadSourceLike", "open_source"]

UploadSourceLike = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, AsyncIterable[bytes]]
ProgressCallback = Callable[[int, "int | None"], None]  # (bytes sent so far, total or None)

CHUNK_SIZE = 1 << 20


class SourceConsumedError(RuntimeError):
    """A one-shot async iterator was already (partly) sent and cannot be replayed."""


class UploadSource:
    """A body that knows its name, its size when knowable, and whether it can be sent again."""

    def __init__(
        self, filename: str, size: int | None, replayable: bool, opener: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        self.filename = filename
        self.size = size
        self.replayable = replayable
        self._opener = opener
        self.consumed = False  # set once the first chunk left: a one-shot source can then never be retried
        self.progress: ProgressCallback | None = None

    def __repr__(self) -> str:
        return f"UploadSource(filename={self.filename!r}, size={self.size!r}, replayable={self.replayable})"

    @property
    def can_send(self) -> bool:
        return self.replayable or not self.consumed

    async def chunks(self) -> AsyncIterator[bytes]:
        if not self.can_send:
            raise SourceConsumedError(f"{self.filename}: a one-shot stream cannot be sent twice")
        sent = 0
        async for chunk in self._opener():
            if not chunk:
                continue
            self.consumed = True
            sent += len(chunk)
            yield chunk
            if self.progress is not None:
                self.progress(sent, self.size)

    def payload(self, content_type: str = "application/octet-stream") -> aiohttp.payload.Payload:
        """An aiohttp payload pulling from `chunks()`, sized when known (a Content-Length, not chunked)."""
        from aiohttp.payload import AsyncIterablePayload

        payload = AsyncIterablePayload(self.chunks(), content_type=content_type, filename=self.filename)
        if self.size is not None:
            payload._size = self.size  # known length: multipart can announce Content-Length instead of chunking
        return payload


def _read_file(path: Path, chunk_size: int) -> Callable[[], AsyncIterator[bytes]]:
    async def opener() -> AsyncIterator[bytes]:
        handle: BinaryIO = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    return opener


def _from_bytes(data: bytes | bytearray | memoryview, chunk_size: int) -> Callable[[], AsyncIterator[bytes]]:
    view = memoryview(data)

    async def opener() -> AsyncIterator[bytes]:
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])

    return opener


def _from_iterable(stream: AsyncIterable[bytes]) -> Callable[[], AsyncIterator[bytes]]:
    async def opener() -> AsyncIterator[bytes]:
        async for chunk in stream:
            yield bytes(chunk)

    return opener


def open_source(
    source: UploadSourceLike,
    filename: str | None = None,
    *,
    size: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> UploadSource:
    """Wrap an upload source. A path gives its own name and size; bytes need a `filename`, iterators too."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        stat: Any = path.stat()  # fail now, before any request, when the file is missing
        return UploadSource(filename or path.name, stat.st_size, True, _read_file(path, chunk_size))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return UploadSource(filename or "upload.bin", len(source), True, _from_bytes(source, chunk_size))
    if isinstance(source, AsyncIterable):
        if not filename:
            raise ValueError("a filename is required when uploading from an async iterator")
        return UploadSource(filename, size, False, _from_iterable(source))
    raise TypeError(f"cannot upload {type(source).__name__}: expected a path, bytes or an async byte iterator")
