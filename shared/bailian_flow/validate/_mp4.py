"""A video's duration and frame size read from its ISO base media boxes (MP4, QuickTime), forward only.

ISO/IEC 14496-12 section 4.2 (box header: 32-bit size, type, a 64-bit size when the first is 1, to the end of the
file when it is 0), 8.2.2 (`mvhd`: timescale and duration, version 0 in 32 bits, version 1 in 64), 8.3.2 (`tkhd`:
width and height as 16.16 fixed point, after the matrix). Only box headers, `mvhd` and `tkhd` are read: the boxes
in between are skipped, by a jump when the entry is stored, by inflating and discarding when it is deflated, so
memory stays flat either way. `moov` may sit after `mdat` (a file not "fast-started"): then the whole entry is
walked, which for a deflated entry costs the inflation of every byte before it.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ._zipdir import RangedReader, ZipEntry, entry_data_offset, iter_entry

# "Video duration: wan2.2: 5 s or less. wan2.5: 10 s or less. wan2.6: 10 s or less." (Wan fine-tune guide, "Data
# requirements", www.alibabacloud.com/help/en/model-studio/wan-video-generation-finetune-guide)
WAN_MAX_VIDEO_SECONDS = {"wan2.2": 5, "wan2.5": 10, "wan2.6": 10}
_CONTAINERS = {b"trak"}
_READ_AHEAD = 4096


@dataclass(frozen=True)
class VideoInfo:
    seconds: float | None
    width: int | None
    height: int | None


class Cursor(Protocol):
    position: int

    async def read(self, length: int) -> bytes: ...

    async def skip(self, length: int) -> None: ...


class RangedCursor:
    """A stored entry read where it lies: a skip is a jump, a read fetches at least `_READ_AHEAD` bytes."""

    def __init__(self, read_at: Callable[[int, int], Awaitable[bytes]], start: int, size: int) -> None:
        self._read_at, self._start, self._size = read_at, start, size
        self._buffer, self._buffer_at = b"", 0
        self.position = 0

    async def read(self, length: int) -> bytes:
        end = min(self.position + length, self._size)
        if self.position < self._buffer_at or end > self._buffer_at + len(self._buffer):
            fetch = min(max(length, _READ_AHEAD), self._size - self.position)
            self._buffer, self._buffer_at = await self._read_at(self._start + self.position, fetch), self.position
        out = self._buffer[self.position - self._buffer_at : end - self._buffer_at]
        self.position += len(out)
        return out

    async def skip(self, length: int) -> None:
        self.position = min(self.position + length, self._size)


class StreamCursor:
    """Forward-only reads over an entry's byte stream (a deflated entry, inflated chunk by chunk)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.position = 0

    async def read(self, length: int) -> bytes:
        while len(self._buffer) < length:
            chunk = await anext(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        out, self._buffer = self._buffer[:length], self._buffer[length:]
        self.position += len(out)
        return out

    async def skip(self, length: int) -> None:
        while length > 0:
            if not self._buffer:
                self._buffer = await anext(self._chunks, b"")
                if not self._buffer:
                    return
            step = min(length, len(self._buffer))
            self._buffer = self._buffer[step:]
            self.position += step
            length -= step


async def probe(cursor: Cursor, size: int) -> VideoInfo | None:
    """Duration and the largest track frame of the video, or None when it has no `moov` box."""
    found: VideoInfo | None = None
    while cursor.position + 8 <= size:
        box = await _header(cursor, size)
        if box is None:
            return found
        kind, end = box
        if kind == b"moov":
            return await _movie(cursor, end)
        await cursor.skip(end - cursor.position)
    return found


async def _header(cursor: Cursor, limit: int) -> tuple[bytes, int] | None:
    start = cursor.position
    head = await cursor.read(8)
    if len(head) < 8:
        return None
    length, kind = struct.unpack(">I4s", head)
    if length == 1:
        large = await cursor.read(8)
        if len(large) < 8:
            return None
        (length,) = struct.unpack(">Q", large)
    elif length == 0:
        length = limit - start
    if length < cursor.position - start or start + length > limit:
        return None  # a box that claims to end before its own header or past its parent: not a video we can read
    return kind, start + length


async def _movie(cursor: Cursor, end: int) -> VideoInfo:
    seconds: float | None = None
    width = height = 0
    pending: list[int] = [end]  # ends of the open container boxes, innermost last
    while pending:
        if cursor.position + 8 > pending[-1]:
            await cursor.skip(pending.pop() - cursor.position)
            continue
        box = await _header(cursor, pending[-1])
        if box is None:
            break
        kind, box_end = box
        if kind in _CONTAINERS:
            pending.append(box_end)
            continue
        body = await cursor.read(min(box_end - cursor.position, 96))
        if kind == b"mvhd":
            seconds = _duration(body)
        elif kind == b"tkhd":
            size = _frame(body)
            if size and size[0] * size[1] > width * height:
                width, height = size
        await cursor.skip(box_end - cursor.position)
    return VideoInfo(seconds, width or None, height or None)


def _duration(body: bytes) -> float | None:
    if body[:1] == b"\x01" and len(body) >= 32:
        timescale, duration = struct.unpack(">IQ", body[20:32])
    elif len(body) >= 20:
        timescale, duration = struct.unpack(">II", body[12:20])
    else:
        return None
    return duration / timescale if timescale else None


def _frame(body: bytes) -> tuple[int, int] | None:
    at = 88 if body[:1] == b"\x01" else 76
    if len(body) < at + 8:
        return None
    width, height = struct.unpack(">II", body[at : at + 8])
    return width >> 16, height >> 16


async def video_entry_problem(
    reader: RangedReader, archive: str, entry: ZipEntry, cd_offset: int, model: str | None, max_side: int
) -> str | None:
    """Why a video entry breaks the documented limits (length for `model`, frame size), or None."""
    if entry.method == 0:
        start = await entry_data_offset(reader, archive, entry, cd_offset)
        cursor: Cursor = RangedCursor(reader.read, start, entry.uncompressed)
    else:
        cursor = StreamCursor(iter_entry(reader, archive, entry, cd_offset))
    info = await probe(cursor, entry.uncompressed)
    if info is None:
        return "the video has no moov box (its duration and size cannot be read: not a playable MP4/MOV)"
    limit, basis = max_video_seconds(model)
    if info.seconds is not None and info.seconds > limit + 0.05:  # container rounding: 5.02 s is a 5 s clip
        return f"the video lasts {info.seconds:.2f} s (at most {limit} s {basis})"
    if info.width and info.height and max(info.width, info.height) > max_side:
        return f"the video is {info.width}x{info.height} (at most {max_side}x{max_side})"
    return None


def max_video_seconds(model: str | None) -> tuple[int, str]:
    """The documented video length limit for `model`, and how it was chosen (for the message)."""
    if model:
        for family, seconds in WAN_MAX_VIDEO_SECONDS.items():
            if model.startswith(family + "-"):
                return seconds, f"for {family}"
        # wan2.7 and later: no limit documented yet; the strictest documented one holds until there is.
        return min(WAN_MAX_VIDEO_SECONDS.values()), f"for {model}: the strictest documented limit"
    return max(WAN_MAX_VIDEO_SECONDS.values()), "for any Wan model; wan2.2 models take 5 s"
