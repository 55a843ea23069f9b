"""`read_range` on both backends: exact slices, the object's end, a version pin, bounds (FileStore by seek, OssStore
by one Range GET with If-Match against the emulator's OSS)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_support import BACKENDS, open_backend

from bailian_flow.store import MAX_RANGE_BYTES, ObjectChangedError, ObjectNotFoundError, ObjectStore

KEY = "datasets/ranges/archive.zip"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    async with open_backend(request, tmp_path) as backend:
        yield backend


async def test_a_range_is_exactly_the_bytes_asked_for(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    assert await store.put(KEY, data)

    for offset, length in ((0, 1), (0, 22), (123_457, 4096), (299_000, 1000), (len(data) - 22, 22)):
        assert await store.read_range(KEY, offset, length) == data[offset : offset + length], (offset, length)


async def test_a_range_over_the_end_is_short_and_past_it_empty(store: ObjectStore) -> None:
    data = b"0123456789"
    assert await store.put(KEY, data)

    assert await store.read_range(KEY, 6, 100) == b"6789"
    assert await store.read_range(KEY, 10, 5) == b""
    assert await store.read_range(KEY, 1_000, 5) == b""


async def test_a_pinned_range_refuses_another_version(store: ObjectStore) -> None:
    assert await store.put(KEY, b"first version of the archive")
    first = await store.head(KEY)
    assert first is not None
    for spelling in (first.etag, f'"{first.etag}"', first.etag.lower()):
        assert await store.read_range(KEY, 0, 5, if_match=spelling) == b"first"
    assert await store.put(KEY, b"second version of the archive")

    with pytest.raises(ObjectChangedError) as raised:
        await store.read_range(KEY, 0, 5, if_match=first.etag)
    assert raised.value.status == 412
    assert await store.read_range(KEY, 0, 6) == b"second"


async def test_a_missing_object_and_bad_bounds_are_refused(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        await store.read_range("datasets/ranges/none.zip", 0, 10)
    for offset, length in ((-1, 10), (0, 0), (0, MAX_RANGE_BYTES + 1)):
        with pytest.raises(ValueError):
            await store.read_range(KEY, offset, length)
