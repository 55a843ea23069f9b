"""An object store that counts what goes through it: the summary line's OSS reads and writes, and a tick's."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from bailian_flow.store._base import ObjectInfo, ObjectStore


class CountingStore:
    """An ObjectStore that counts the reads (GET, HEAD, LIST pages) and writes made through it.

    Options it does not know pass through untouched (`**options`), so it wraps any backend.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.reads = 0
        self.writes = 0

    async def put(self, key: str, data: bytes, **options: Any) -> bool:
        self.writes += 1
        return await self.inner.put(key, data, **options)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], **options: Any) -> None:
        self.writes += 1
        await self.inner.put_stream(key, chunks, **options)

    async def get(self, key: str, **options: Any) -> bytes | None:
        self.reads += 1
        return await self.inner.get(key, **options)

    async def head(self, key: str, **options: Any) -> ObjectInfo | None:
        self.reads += 1
        return await self.inner.head(key, **options)

    def stream(self, key: str, **options: Any) -> AsyncIterator[bytes]:
        self.reads += 1
        return self.inner.stream(key, **options)

    async def read_range(self, key: str, offset: int, length: int, **options: Any) -> bytes:
        self.reads += 1
        return await self.inner.read_range(key, offset, length, **options)

    async def list(self, prefix: str, **options: Any) -> AsyncIterator[ObjectInfo]:
        # One read per page of up to 1,000 keys, as OSS answers (and bills) them.
        self.reads += 1
        seen = 0
        async for info in self.inner.list(prefix, **options):
            seen += 1
            if seen % 1000 == 0:
                self.reads += 1
            yield info

    async def delete(self, key: str, **options: Any) -> None:
        self.writes += 1
        await self.inner.delete(key, **options)

    async def close(self) -> None:
        await self.inner.close()
