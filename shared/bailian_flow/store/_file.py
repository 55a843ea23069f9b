"""A local-filesystem object store with the same semantics as OSS, for `file://` runs and tests.

Layout under `root`: an object's key is its relative path, so datasets can be dropped in by hand
(`root/datasets/train.jsonl`). Two hidden directories are reserved and never listed:
`.flow-meta/<key>.json` (sidecar: etag, metadata, content type) and `.flow-tmp/` (writes in progress).

Writes appear whole: the data goes to a temp file first, then `os.link` (create-only: fails if the key
exists, atomically, even across processes) or `os.replace` (overwrite) puts it in place. The sidecar records
the inode it describes; a sidecar whose inode does not match the object (an overwrite in flight, or a file
dropped in by hand) is ignored, and the object gets a stat-derived etag instead of its MD5.

Limitation: a key cannot be both an object and a "directory" (`a` and `a/b`) on a filesystem, nor can `a`
coexist with a key under `a.json/` (their sidecars would collide); such a write raises StoreError.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from bailian_flow.store._base import (
    DEFAULT_CHUNK_SIZE,
    InvalidKeyError,
    ObjectChangedError,
    ObjectInfo,
    ObjectNotFoundError,
    StoreError,
    bare_etag,
    check_range,
)

_META_DIR = ".flow-meta"
_TMP_DIR = ".flow-tmp"
_RESERVED = frozenset({_META_DIR, _TMP_DIR})


def _open_for_reading(path: Path) -> BinaryIO:
    return open(path, "rb")  # closed by the generator that owns it


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class FileStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FileStore(root={str(self.root)!r})"

    # -- keys and paths ----------

    def _path(self, key: str) -> Path:
        segments = key.split("/")
        if (
            not key
            or "\x00" in key
            or any(segment in ("", ".", "..") for segment in segments)
            or segments[0] in _RESERVED
        ):
            raise InvalidKeyError(f"key not storable on a filesystem: {key!r}")
        return self.root.joinpath(*segments)

    def _meta_path(self, key: str) -> Path:
        *parents, name = key.split("/")
        return self.root.joinpath(_META_DIR, *parents, name + ".json")

    # -- writes ----------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        forbid_overwrite: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> bool:
        path = self._path(key)
        return await asyncio.to_thread(
            self._put_sync, key, path, bytes(data), forbid_overwrite, dict(metadata or {}), content_type
        )

    def _put_sync(
        self,
        key: str,
        path: Path,
        data: bytes,
        forbid_overwrite: bool,
        metadata: dict[str, str],
        content_type: str | None,
    ) -> bool:
        tmp_dir = self.root / _TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        try:
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
            return self._install(key, path, tmp, etag, metadata, content_type, forbid_overwrite)
        finally:
            tmp.unlink(missing_ok=True)

    def _install(
        self,
        key: str,
        path: Path,
        tmp: Path,
        etag: str,
        metadata: dict[str, str],
        content_type: str | None,
        forbid_overwrite: bool,
    ) -> bool:
        """Move a fully written temporary file into place under `key`."""
        sidecar = {
            "etag": etag,
            "metadata": {name.lower(): value for name, value in metadata.items()},
            "content_type": content_type,
            "inode": os.stat(tmp).st_ino,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if forbid_overwrite:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                self._write_sidecar(key, sidecar)
            else:
                # Sidecar first: until the replace lands, its inode does not match and it is ignored.
                self._write_sidecar(key, sidecar)
                os.replace(tmp, path)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise StoreError(f"key {key!r} collides with a directory or object: {exc.strerror}") from exc
        return True

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None) -> None:
        path = self._path(key)
        tmp_dir = self.root / _TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        digest = hashlib.md5(usedforsecurity=False)
        try:
            handle = await asyncio.to_thread(open, tmp, "xb")
            try:
                async for chunk in chunks:
                    digest.update(chunk)
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(os.fsync, handle.fileno())
            finally:
                handle.close()
            etag = digest.hexdigest().upper()
            await asyncio.to_thread(self._install, key, path, tmp, etag, {}, content_type, False)
        finally:
            tmp.unlink(missing_ok=True)

    def _write_sidecar(self, key: str, sidecar: dict[str, Any]) -> None:
        meta_path = self._meta_path(key)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.root / _TMP_DIR / (uuid.uuid4().hex + ".meta")
        tmp.write_text(json.dumps(sidecar), encoding="utf-8")
        os.replace(tmp, meta_path)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._delete_sync, key, path)

    def _delete_sync(self, key: str, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            return
        self._meta_path(key).unlink(missing_ok=True)

    # -- reads ----------

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return await asyncio.to_thread(self._get_sync, path)

    @staticmethod
    def _get_sync(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return await asyncio.to_thread(self._head_sync, key, path)

    def _head_sync(self, key: str, path: Path) -> ObjectInfo | None:
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return self._info(key, stat)

    def _info(self, key: str, stat: os.stat_result) -> ObjectInfo:
        sidecar: dict[str, Any] = {}
        try:
            loaded = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and loaded.get("inode") == stat.st_ino:
                sidecar = loaded
        except (FileNotFoundError, NotADirectoryError, ValueError):
            pass
        # A hand-dropped file has no MD5 on record; identify this version of it by inode, size and mtime.
        etag = (
            sidecar.get("etag")
            or hashlib.md5(f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}".encode(), usedforsecurity=False)
            .hexdigest()
            .upper()
        )
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            etag=str(etag),
            last_modified=dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc),
            metadata=dict(sidecar.get("metadata") or {}),
            content_type=sidecar.get("content_type"),
        )

    async def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        # The open handle pins this version of the file: an overwrite (replace) cannot tear the stream.
        handle = await self._open_pinned(key, if_match)
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def _open_pinned(self, key: str, if_match: str | None) -> BinaryIO:
        """The object's file open for reading, checked to be the version `if_match` names (when given)."""
        try:
            handle = await asyncio.to_thread(_open_for_reading, self._path(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no such object: {key!r}", status=404, code="NoSuchKey") from None
        if if_match is None:
            return handle
        try:
            opened = await asyncio.to_thread(self._info, key, os.fstat(handle.fileno()))
        except BaseException:
            handle.close()
            raise
        if bare_etag(if_match).upper() != opened.etag.upper():
            handle.close()
            raise ObjectChangedError(f"{key!r} is not the version asked for", status=412, code="PreconditionFailed")
        return handle

    async def read_range(self, key: str, offset: int, length: int, *, if_match: str | None = None) -> bytes:
        check_range(offset, length)
        handle = await self._open_pinned(key, if_match)
        try:

            def read() -> bytes:
                handle.seek(offset)
                return bytes(handle.read(length))

            return await asyncio.to_thread(read)
        finally:
            handle.close()

    async def list(self, prefix: str, *, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        infos = await asyncio.to_thread(self._list_sync, prefix, start_after)
        for info in infos:
            yield info

    def _list_sync(self, prefix: str, start_after: str | None) -> builtins.list[ObjectInfo]:
        base, _, _ = prefix.rpartition("/")
        base_segments = base.split("/")
        if base and (base_segments[0] in _RESERVED or any(s in ("", ".", "..") for s in base_segments)):
            return []  # no storable key has such a prefix (and it must not escape the root)
        directory = self.root.joinpath(*base.split("/")) if base else self.root
        found: builtins.list[ObjectInfo] = []
        self._walk(directory, f"{base}/" if base else "", _utf8(prefix), start_after, found)
        return found

    def _walk(
        self,
        directory: Path,
        key_prefix: str,
        prefix: bytes,
        start_after: str | None,
        found: builtins.list[ObjectInfo],
    ) -> None:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        after = _utf8(start_after) if start_after is not None else None
        # Sort as the full keys sort: a directory's keys all continue with "/", so it sorts as "name/".
        keyed = []
        for entry in entries:
            if not key_prefix and entry.name in _RESERVED:
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            keyed.append((_utf8(key_prefix + entry.name + ("/" if is_dir else "")), entry, is_dir))
        keyed.sort(key=lambda item: item[0])
        for sort_key, entry, is_dir in keyed:
            common = min(len(sort_key), len(prefix))
            if sort_key[:common] != prefix[:common]:
                continue
            if is_dir:
                # Every key below starts with sort_key; skip the subtree when start_after is past all of them.
                if after is not None and after > sort_key and not after.startswith(sort_key):
                    continue
                self._walk(Path(entry.path), key_prefix + entry.name + "/", prefix, start_after, found)
            elif entry.is_file(follow_symlinks=False) and sort_key.startswith(prefix):
                if after is not None and sort_key <= after:
                    continue
                found.append(self._info(key_prefix + entry.name, entry.stat()))

    async def close(self) -> None:
        return None
