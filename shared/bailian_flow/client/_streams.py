"""Upload bodies streamed in constant memory: a path, bytes or an async byte iterator.

Whatever the size, at most one chunk is held at a time. A path on a plain TCP connection goes out with the
kernel's `sendfile` (page cache to socket, no copy through Python); otherwise (TLS, or a writer that frames
or compresses) it is read chunk by chunk in a worker thread. An async iterator (say an OSS object being
downloaded) is passed through as it arrives, and aiohttp's writer waits for the socket to drain before asking
for the next chunk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CHUNK_SIZE", "ProgressCallback", "UploadSource", "UploadSourceLike", "open_source"]

UploadSourceLike = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, AsyncIterable[bytes]]
ProgressCallback = Callable[[int, "int | None"], None]  # (bytes sent so far, total or None)

CHUNK_SIZE = 1 << 20
# One `loop.sendfile` call per segment, so progress is reported as the file goes out.
SENDFILE_SEGMENT = 8 << 20


class SourceConsumedError(RuntimeError):
    """A one-shot async iterator was already (partly) sent and cannot be replayed."""


class UploadSource:
    """A body that knows its name, its size when knowable, and whether it can be sent again."""

    def __init__(
        self,
        filename: str,
        size: int | None,
        replayable: bool,
        opener: Callable[[], AsyncIterator[bytes]],
        path: Path | None = None,
    ) -> None:
        self.filename = filename
        self.size = size
        self.replayable = replayable
        self._opener = opener
        self._path = path  # a regular file that `sendfile` can send as is
        # Set once the body started: a one-shot source (opened) or any source (a chunk left) is then spent.
        self.consumed = False
        self.progress: ProgressCallback | None = None

    def __repr__(self) -> str:
        return f"UploadSource(filename={self.filename!r}, size={self.size!r}, replayable={self.replayable})"

    @property
    def can_send(self) -> bool:
        return self.replayable or not self.consumed

    async def chunks(self) -> AsyncIterator[bytes]:
        if not self.can_send:
            raise SourceConsumedError(f"{self.filename}: a one-shot stream cannot be sent twice")
        if not self.replayable:
            # Spent once opened, even before its first chunk: when the server answers early the HTTP library
            # closes the stream mid-await, and a retry would send it empty (an empty file on Bailian).
            self.consumed = True
        sent = 0
        async for chunk in self._opener():
            if not chunk:
                continue
            self.consumed = True
            sent += len(chunk)
            yield chunk
            if self.progress is not None:
                self.progress(sent, self.size)

    async def send_file(self, writer: aiohttp.abc.AbstractStreamWriter) -> bool:
        """Send a path source with `sendfile` on `writer`'s socket; False, having sent nothing, when it can't.

        `sendfile` bypasses aiohttp's writer, so only where that writer would pass the bytes through as they
        are: a plain socket (asyncio's fallback for TLS copies 16 KiB at a time; the chunked path is faster),
        no chunked framing, no compression, no length clipping, no per-write hook.
        """
        if self._path is None or self.size is None or not self.can_send:
            return False
        if (
            getattr(writer, "chunked", True)
            or getattr(writer, "_compress", None) is not None
            or getattr(writer, "length", None) is not None
            or getattr(writer, "on_body_write", None) is not None
        ):
            return False
        transport = getattr(writer, "transport", None)
        if transport is None or transport.get_extra_info("sslcontext") is not None:
            return False
        loop = asyncio.get_running_loop()
        handle: BinaryIO = await asyncio.to_thread(open, self._path, "rb")
        try:
            sent = 0
            while sent < self.size:
                count = min(SENDFILE_SEGMENT, self.size - sent)
                try:
                    done = await loop.sendfile(transport, handle, sent, count, fallback=False)
                except (NotImplementedError, RuntimeError):  # SendfileNotAvailableError is a RuntimeError
                    if sent == 0:
                        return False  # raised before sending anything: this loop or transport cannot
                    raise
                if done == 0:
                    raise OSError(f"{self._path} shrank while being sent ({sent} of {self.size} bytes)")
                self.consumed = True
                sent += done
                if self.progress is not None:
                    self.progress(sent, self.size)
        finally:
            await asyncio.to_thread(handle.close)
        return True

    def payload(self, content_type: str = "application/octet-stream") -> aiohttp.payload.Payload:
        """An aiohttp payload pulling from `chunks()` (or `send_file`), sized when known (a Content-Length,
        not chunked)."""
        payload = _source_payload_class()(self, content_type=content_type, filename=self.filename)
        if self.size is not None:
            payload._size = self.size  # known length: multipart can announce Content-Length instead of chunking
        return payload


@cache
def _source_payload_class() -> Callable[..., aiohttp.payload.Payload]:
    """Defined on first use: this module stays importable without loading aiohttp's payload machinery."""
    from aiohttp.payload import AsyncIterablePayload

    class SourcePayload(AsyncIterablePayload):
        def __init__(self, source: UploadSource, **kwargs: Any) -> None:
            super().__init__(source.chunks(), **kwargs)
            self._source = source

        async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
            # MultipartWriter writes each part with `write` (no length limit to respect).
            if await self._source.send_file(writer):
                self._iter = None  # sent: the chunk iterator is never started
                return
            await super().write(writer)

    return SourcePayload


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
        return UploadSource(filename or path.name, stat.st_size, True, _read_file(path, chunk_size), path=path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return UploadSource(filename or "upload.bin", len(source), True, _from_bytes(source, chunk_size))
    if isinstance(source, AsyncIterable):
        if not filename:
            raise ValueError("a filename is required when uploading from an async iterator")
        return UploadSource(filename, size, False, _from_iterable(source))
    raise TypeError(f"cannot upload {type(source).__name__}: expected a path, bytes or an async byte iterator")
