"""The emulated OSS buckets on disk.

Object keys are arbitrary UTF-8 (spaces, ``%``, non-ASCII, ``..``), so they never become file names: each
object is ``<root>/<bucket>/<sha256(key)>.data`` with a JSON sidecar ``.json`` holding the key, ETag, size,
content type, time and user metadata. The sidecars are reloaded at start-up, so a ``--data-dir`` outlives the
process. An in-memory index (rebuilt from the sidecars) answers listings: each bucket's keys kept sorted by code
point (the same order as their UTF-8 bytes), so a listing bisects to its prefix and reads only its page.

Commits (:meth:`OssStore.commit`) contain no ``await``: the create-only check and the rename happen in one
step of the event loop, so two concurrent ``x-oss-forbid-overwrite`` writers cannot both win.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .blobs import Blob, BlobStore

log = logging.getLogger(__name__)

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1023


@dataclass
class ObjectMeta:
    bucket: str
    key: str
    size: int
    etag: str  # upper-case MD5 hex, unquoted
    content_type: str
    last_modified: float
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectMeta:
        return cls(**data)


def valid_key(key: str) -> bool:
    return 0 < len(key.encode("utf-8", errors="surrogatepass")) <= MAX_KEY_BYTES and "\x00" not in key


class OssStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # Incoming uploads land next to the buckets so that the final rename stays on one filesystem.
        self.incoming = BlobStore(root / ".incoming")
        self.buckets: dict[str, dict[str, ObjectMeta]] = {}
        # Each bucket's keys in order, kept as objects come and go: a listing starts at its prefix by bisection
        # instead of sorting every key of the bucket (thousands of runs make tens of thousands of objects).
        self._order: dict[str, list[str]] = {}
        self._load()

    def _load(self) -> None:
        for bucket_dir in self.root.iterdir():
            if not bucket_dir.is_dir() or not BUCKET_NAME.match(bucket_dir.name):
                continue
            objects = self.buckets.setdefault(bucket_dir.name, {})
            for sidecar in bucket_dir.glob("*.json"):
                try:
                    meta = ObjectMeta.from_json(json.loads(sidecar.read_text("utf-8")))
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("skipping unreadable OSS sidecar %s: %s", sidecar, exc)
                    continue
                if sidecar.with_suffix(".data").exists():
                    objects[meta.key] = meta
            self._order[bucket_dir.name] = sorted(objects)

    def _paths(self, bucket: str, key: str) -> tuple[Path, Path]:
        digest = hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()
        base = self.root / bucket / digest
        return base.with_suffix(".data"), base.with_suffix(".json")

    def data_path(self, meta: ObjectMeta) -> Path:
        return self._paths(meta.bucket, meta.key)[0]

    def get(self, bucket: str, key: str) -> ObjectMeta | None:
        return self.buckets.get(bucket, {}).get(key)

    def commit(
        self,
        bucket: str,
        key: str,
        blob: Blob,
        *,
        forbid_overwrite: bool,
        content_type: str,
        metadata: dict[str, str],
        now: float,
        etag: str | None = None,
    ) -> tuple[ObjectMeta | None, ObjectMeta | None]:
        """Publish ``blob`` as ``bucket/key``: ``(new, previous)``, ``new`` None when create-only lost."""
        objects = self.buckets.setdefault(bucket, {})
        previous = objects.get(key)
        if previous is not None and forbid_overwrite:
            blob.path.unlink(missing_ok=True)
            return None, previous
        data_path, meta_path = self._paths(bucket, key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        meta = ObjectMeta(
            bucket=bucket,
            key=key,
            size=blob.size,
            etag=etag if etag is not None else blob.etag,
            content_type=content_type,
            last_modified=now,
            metadata=metadata,
        )
        os.replace(blob.path, data_path)
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(meta), ensure_ascii=False), "utf-8")
        os.replace(tmp, meta_path)
        objects[key] = meta
        if previous is None:
            bisect.insort(self._order.setdefault(bucket, []), key)
        return meta, previous

    def delete(self, bucket: str, key: str) -> ObjectMeta | None:
        meta = self.buckets.get(bucket, {}).pop(key, None)
        if meta is not None:
            order = self._order[bucket]
            del order[bisect.bisect_left(order, key)]
            data_path, meta_path = self._paths(bucket, key)
            meta_path.unlink(missing_ok=True)
            data_path.unlink(missing_ok=True)
        return meta

    def sorted_keys(self, bucket: str, prefix: str = "", after: str = "") -> Iterator[str]:
        """The bucket's keys in order that start with `prefix` and sort after `after` (O(log n) to the first)."""
        order = self._order.get(bucket, [])
        start = bisect.bisect_right(order, after) if after >= prefix else bisect.bisect_left(order, prefix)
        for index in range(start, len(order)):
            key = order[index]
            if not key.startswith(prefix):
                return
            yield key

    def count(self) -> int:
        return sum(len(objects) for objects in self.buckets.values())

    def clear(self) -> None:
        self.buckets.clear()
        self._order.clear()
        for child in self.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
        self.incoming = BlobStore(self.root / ".incoming")
