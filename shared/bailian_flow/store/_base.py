"""The object store contract every backend implements, and its value types and errors.

Errors:

    StoreError                  any failure of the backing store (the SDK's error is chained as __cause__)
    ├── ObjectNotFoundError     stream() of a key that does not exist (get/head answer None instead)
    ├── ObjectChangedError      the object is not (or no longer) the version the read was pinned to
    └── InvalidKeyError         a key the backend cannot hold (also a ValueError)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

DEFAULT_CHUNK_SIZE = 1 << 20
# The most one `read_range` returns: a ranged read is for a slice (a zip's directory, an entry's head), never a
# whole large object (that is `stream`).
MAX_RANGE_BYTES = 64 << 20


class StoreError(Exception):
    """The store failed; `status` and `code` carry the service's answer when there was one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ObjectNotFoundError(StoreError):
    pass


class ObjectChangedError(StoreError):
    pass


class InvalidKeyError(StoreError, ValueError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a HEAD tells about an object.

    `etag` is bare (no surrounding quotes), as OSS event payloads spell it; `metadata` holds user metadata
    without the `x-oss-meta-` prefix, keys lower-cased (OSS lower-cases them too).
    """

    key: str
    size: int
    etag: str
    last_modified: dt.datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


@runtime_checkable
class ObjectStore(Protocol):
    async def put(
        self,
        key: str,
        data: bytes,
        *,
        forbid_overwrite: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> bool:
        """Write `data` whole. False when `forbid_overwrite` and the key already exists; True when written."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None) -> None:
        """Write an object of any size from `chunks` in constant memory (it appears whole or not at all)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The whole object, or None when it does not exist. For large objects use `stream`."""
        ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """Chunks of at most `chunk_size` bytes, in constant memory; raises ObjectNotFoundError if missing.

        `if_match` pins the read to one version (an ETag, quoted or bare): ObjectChangedError when the object
        holds another version, before the first chunk or at any chunk after it.
        """
        ...

    async def read_range(self, key: str, offset: int, length: int, *, if_match: str | None = None) -> bytes:
        """`length` bytes from `offset` (fewer at the object's end, none past it), in one request.

        ObjectNotFoundError when the key does not exist; with `if_match`, ObjectChangedError when the object holds
        another version. ValueError for a negative offset or a length outside 1..MAX_RANGE_BYTES.
        """
        ...

    def list(self, prefix: str, *, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in UTF-8 byte order, strictly after `start_after`."""
        ...

    async def delete(self, key: str) -> None:
        """Delete; deleting a missing key is not an error."""
        ...

    async def close(self) -> None: ...


def check_range(offset: int, length: int) -> None:
    if offset < 0:
        raise ValueError("offset must not be negative")
    if not 1 <= length <= MAX_RANGE_BYTES:
        raise ValueError(f"length must be between 1 and {MAX_RANGE_BYTES}")


def bare_etag(etag: str | None) -> str:
    """OSS quotes ETags in headers and listings but not in event payloads; compare them bare."""
    return (etag or "").strip().strip('"')
