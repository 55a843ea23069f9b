"""Blocks handed from work that produces them as it goes to a consumer that sends them (an upload, a put)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class Feed:
    """Blocks handed to a consumer that reads them as a body (`blocks()`, ended by `put(None)`), at most `depth`
    waiting: what feeds an upload or a put from work that produces as it goes (`ahead.py`, `batch_writes.py`)."""

    def __init__(self, depth: int) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=depth)

    async def blocks(self) -> AsyncIterator[bytes]:
        while (block := await self._queue.get()) is not None:
            yield block

    async def put(self, block: bytes | None, consumer: asyncio.Future[Any]) -> bool:
        """Hand `block` over; False (nothing handed) when `consumer` ended first: it failed, or was stopped."""
        putting: asyncio.Future[Any] = asyncio.ensure_future(self._queue.put(block))
        await asyncio.wait({putting, consumer}, return_when=asyncio.FIRST_COMPLETED)
        if putting.done():
            return True
        putting.cancel()
        return False


async def stop(task: asyncio.Future[Any]) -> None:
    """Cancel `task` unless it ended, and wait for it; how it ended is not news (it was stopped on purpose)."""
    if not task.done():
        task.cancel()
    await asyncio.wait([task])
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
