"""Where a shard's answers go while it is collected: a spill file on local disk (sorted afterwards), the part object
or the results written from it, and the results streamed while the answers arrive in input order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import IO, TYPE_CHECKING

from bailian_flow.pipeline.kinds.batch.batch_lines import AHEAD_BLOCKS, BODY_BLOCK, in_blocks
from bailian_flow.pipeline.kinds.batch.feed import Feed, stop

if TYPE_CHECKING:
    from bailian_flow.store import ObjectStore

log = logging.getLogger("bailian_flow.pipeline")


class InOrder:
    """An object written while its lines arrive, as long as they arrive in line order (`add`); `finish` makes it,
    `abort` (or a line out of order) leaves nothing: an unfinished put is no object in either store."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.active = True
        self._finished = False
        self._last = -1
        self._block: list[bytes] = []
        self._size = 0
        self._feed = Feed(AHEAD_BLOCKS)
        self._task: asyncio.Future[None] = asyncio.ensure_future(store.put_stream(key, self._feed.blocks()))

    async def add(self, line_no: int, raw: bytes) -> None:
        """`raw`, a whole line (newline included), as line `line_no`."""
        if not self.active:
            return
        if line_no <= self._last:
            await self.abort()
            return
        self._last = line_no
        self._block.append(raw)
        self._size += len(raw)
        if self._size >= BODY_BLOCK:
            block, self._block, self._size = b"".join(self._block), [], 0
            await self._send(block)

    async def _send(self, block: bytes | None) -> None:
        if not await self._feed.put(block, self._task):  # the put ended early (it failed): the spill writes it
            await self.abort()

    async def finish(self) -> bool:
        """Whether the object is made (False: it was aborted or its put failed, and nothing is left)."""
        if self.active and self._block:
            block, self._block = b"".join(self._block), []
            await self._send(block)
        if self.active:
            await self._send(None)
        if not self.active:
            return False
        self.active = False
        try:
            await self._task
        except Exception as exc:
            log.info("answers not streamed (%s): written from the spill", type(exc).__name__)
            return False
        self._finished = True
        return True

    async def abort(self) -> None:
        self.active = False
        if not self._finished:
            await stop(self._task)


class Spill:
    """Answer lines (whole, newline included) appended to a file in blocks; where each went is counted, not asked of
    the file (a seek flushes). `ordered` stays True while they come in line order, as a service answering in input
    order writes them: the records then need no sort."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.size = 0
        self.ordered = True
        self._last = -1
        self._block: list[bytes] = []
        self._pending = 0

    def add(self, line_no: int, kind: int, raw: bytes) -> tuple[int, int, int, int]:
        offset = self.size + self._pending
        self._block.append(raw)
        self._pending += len(raw)
        if self._pending >= BODY_BLOCK:
            self.flush()
        if line_no <= self._last:
            self.ordered = False
        self._last = line_no
        return line_no, kind, offset, len(raw)

    def flush(self) -> None:
        if self._block:
            self.file.write(b"".join(self._block))
            self.size += self._pending
            self._block, self._pending = [], 0


def part_body(spill: Spill, records: list[tuple[int, int, int, int]]) -> AsyncIterator[bytes]:
    """The part object (`<line> <kind> <answer>` per line) in record order, in blocks."""
    return in_blocks(_part_lines(spill, records))


async def _part_lines(spill: Spill, records: list[tuple[int, int, int, int]]) -> AsyncGenerator[bytes, None]:
    spill.flush()
    file = spill.file
    for line_no, kind, offset, length in records:
        file.seek(offset)
        yield b"%d %d " % (line_no, kind) + file.read(length)


async def answers_body(spill: Spill, records: list[tuple[int, int, int, int]], kind: int) -> AsyncIterator[bytes]:
    """The spilled lines of one kind in record order, as the results file: neighbours on disk are read as one."""
    spill.flush()
    file = spill.file
    start = end = -1
    for _, line_kind, offset, length in records:
        if line_kind != kind:
            continue
        if offset == end and end - start < BODY_BLOCK:
            end += length
            continue
        if start >= 0:
            file.seek(start)
            yield file.read(end - start)
        start, end = offset, offset + length
    if start >= 0:
        file.seek(start)
        yield file.read(end - start)
