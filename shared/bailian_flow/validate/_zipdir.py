"""A zip archive read by ranged reads: its End of Central Directory (zip64 too), its central directory, one entry.

Nothing here holds more than one bounded chunk of the archive: the central directory is parsed in chunks of
`CHUNK` bytes, an entry's data is inflated `CHUNK` compressed bytes at a time with a cap on what comes out. The
archive is behind `RangedReader`, so the same code reads a local file (`FileRangedReader`) or an OSS object by
ranged GETs (`StoreRangedReader`, over any store that has `read_range`).

Format: PKWARE APPNOTE.TXT 6.3.10, sections 4.3.6 (local header), 4.3.12 (central directory header), 4.3.14-16
(zip64 end of central directory record and locator, end of central directory record), 4.5.3 (zip64 extra field).
Every problem is a `DatasetError` naming the archive (and the entry); a hostile archive never raises anything else.
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ._errors import DatasetError

CHUNK = 1 << 20

_EOCD = struct.Struct("<IHHHHIIH")  # 22 bytes
_EOCD_SIG = 0x06054B50
_Z64_LOCATOR = struct.Struct("<IIQI")  # 20 bytes
_Z64_LOCATOR_SIG = 0x07064B50
_Z64_EOCD = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_Z64_EOCD_SIG = 0x06064B50
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_CENTRAL_SIG = 0x02014B50
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_LOCAL_SIG = 0x04034B50
_MAX_COMMENT = 0xFFFF
_STORED, _DEFLATED = 0, 8
_UNIX = 3  # "version made by" high byte of an archive written on Unix: external attributes hold st_mode << 16
_DRIVE = re.compile(r"^[A-Za-z]:")


class RangedReader(Protocol):
    """Random access to an archive of a known size. `read` returns exactly `length` bytes or fewer at the end."""

    @property
    def size(self) -> int: ...

    async def read(self, offset: int, length: int) -> bytes: ...


class FileRangedReader:
    """A local file as a `RangedReader` (blocking reads: a local disk answers in microseconds)."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")
        self._size = path.stat().st_size

    @property
    def size(self) -> int:
        return self._size

    async def read(self, offset: int, length: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(length)

    def close(self) -> None:
        self._file.close()


class SupportsReadRange(Protocol):
    """What `StoreRangedReader` needs of an object store: one ranged GET pinned to a version (OSS `Range` + `If-Match`).

    The store contract (store/_base.py) has no ranged read yet; a backend adds `read_range` and this adapter works.
    """

    async def read_range(self, key: str, offset: int, length: int, *, if_match: str | None = None) -> bytes: ...


class StoreRangedReader:
    """An object in a store as a `RangedReader`, every read pinned to the ETag the validation started from."""

    def __init__(self, store: SupportsReadRange, key: str, size: int, etag: str | None) -> None:
        self._store, self._key, self._size, self._etag = store, key, size, etag

    @property
    def size(self) -> int:
        return self._size

    async def read(self, offset: int, length: int) -> bytes:
        return await self._store.read_range(self._key, offset, length, if_match=self._etag)


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what an archive may declare; checked before anything is inflated."""

    max_archive_bytes: int
    max_entries: int
    max_central_directory_bytes: int
    max_total_uncompressed: int
    max_ratio: int
    ratio_floor: int  # entries smaller than this once inflated are not judged by ratio (tiny files compress wildly)


@dataclass(frozen=True)
class ZipEntry:
    name: str
    method: int
    flags: int
    crc: int
    compressed: int
    uncompressed: int
    header_offset: int
    is_dir: bool


@dataclass(frozen=True)
class ZipDirectory:
    """The entries, and where the central directory starts (every entry's data must end before it)."""

    entries: list[ZipEntry]
    start: int


async def _read_exact(reader: RangedReader, archive: str, offset: int, length: int, what: str) -> bytes:
    data = await reader.read(offset, length) if length else b""
    if len(data) != length:
        raise DatasetError(archive, f"the archive is truncated: {what} at byte {offset} runs past its end")
    return data


async def read_central_directory(reader: RangedReader, archive: str, limits: ZipLimits) -> ZipDirectory:
    """Every entry the central directory lists, its names checked, before a byte of any entry is read."""
    size = reader.size
    if size > limits.max_archive_bytes:
        raise DatasetError(archive, f"the archive is {size:,} bytes (at most {limits.max_archive_bytes:,})")
    entries_total, cd_size, cd_offset = await _find_directory(reader, archive, size)
    if entries_total > limits.max_entries:
        raise DatasetError(
            archive, f"the archive lists {entries_total:,} entries (at most {limits.max_entries:,}): zip bomb by count"
        )
    if cd_size > limits.max_central_directory_bytes:
        raise DatasetError(
            archive,
            f"the central directory is {cd_size:,} bytes (at most {limits.max_central_directory_bytes:,})",
        )
    entries = await _parse_directory(reader, archive, cd_offset, cd_size, entries_total)
    _check_entries(archive, entries, cd_offset, limits)
    return ZipDirectory(entries, cd_offset)


async def _find_directory(reader: RangedReader, archive: str, size: int) -> tuple[int, int, int]:
    tail_length = min(size, _EOCD.size + _MAX_COMMENT)
    tail = await reader.read(size - tail_length, tail_length)
    position = len(tail)
    while True:
        position = tail.rfind(b"PK\x05\x06", 0, position)
        if position < 0 or len(tail) - position < _EOCD.size:
            if position < 0:
                raise DatasetError(
                    archive, "not a zip archive, or truncated: no end of central directory record in its last bytes"
                )
            continue
        fields = _EOCD.unpack_from(tail, position)
        comment_length = fields[7]
        if position + _EOCD.size + comment_length == len(tail):
            break  # a signature inside the comment would not end the file exactly
    eocd_at = size - tail_length + position
    _, disk, cd_disk, on_disk, total, cd_size, cd_offset, _ = fields
    if (disk, cd_disk) != (0, 0) and 0xFFFF not in (disk, cd_disk):
        raise DatasetError(archive, "multi-part (spanned) archives are not supported")
    directory_end = eocd_at
    if 0xFFFF in (on_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):
        total, cd_size, cd_offset, directory_end = await _zip64_directory(reader, archive, eocd_at)
    elif on_disk != total:
        raise DatasetError(archive, "multi-part (spanned) archives are not supported")
    if cd_offset + cd_size != directory_end:
        raise DatasetError(
            archive,
            f"the central directory ({cd_size:,} bytes at {cd_offset:,}) does not end where the end record starts "
            f"({directory_end:,}): the archive is truncated, has data prepended, or is corrupt",
        )
    return total, cd_size, cd_offset


async def _zip64_directory(reader: RangedReader, archive: str, eocd_at: int) -> tuple[int, int, int, int]:
    if eocd_at < _Z64_LOCATOR.size:
        raise DatasetError(archive, "the end record asks for zip64 but the zip64 locator is missing")
    locator = await _read_exact(reader, archive, eocd_at - _Z64_LOCATOR.size, _Z64_LOCATOR.size, "zip64 locator")
    signature, disk, record_at, disks = _Z64_LOCATOR.unpack(locator)
    if signature != _Z64_LOCATOR_SIG:
        raise DatasetError(archive, "the end record asks for zip64 but the zip64 locator is missing")
    if disk != 0 or disks > 1:
        raise DatasetError(archive, "multi-part (spanned) archives are not supported")
    if record_at + _Z64_EOCD.size > eocd_at - _Z64_LOCATOR.size:
        raise DatasetError(archive, "the zip64 end record lies outside the archive")
    record = await _read_exact(reader, archive, record_at, _Z64_EOCD.size, "zip64 end record")
    signature, _, _, _, disk, cd_disk, on_disk, total, cd_size, cd_offset = _Z64_EOCD.unpack(record)
    if signature != _Z64_EOCD_SIG:
        raise DatasetError(archive, "the zip64 locator points at no zip64 end record")
    if (disk, cd_disk) != (0, 0) or on_disk != total:
        raise DatasetError(archive, "multi-part (spanned) archives are not supported")
    return total, cd_size, cd_offset, record_at


async def _parse_directory(
    reader: RangedReader, archive: str, cd_offset: int, cd_size: int, expected: int
) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    buffer, at = b"", 0  # parse at an offset: slicing the buffer per record would copy it once per entry
    read_to = cd_offset
    end = cd_offset + cd_size
    while True:
        if len(buffer) - at >= _CENTRAL.size:
            fields = _CENTRAL.unpack_from(buffer, at)
            record_length = _CENTRAL.size + fields[10] + fields[11] + fields[12]
            if fields[0] != _CENTRAL_SIG:
                raise DatasetError(archive, f"central directory entry {len(entries) + 1} is corrupt (bad signature)")
            if len(buffer) - at >= record_length:
                variable = buffer[at + _CENTRAL.size : at + record_length]
                entries.append(_entry(archive, fields, variable, len(entries) + 1))
                at += record_length
                continue
        if read_to >= end:
            break
        length = min(CHUNK, end - read_to)
        buffer = buffer[at:] + await _read_exact(reader, archive, read_to, length, "the central directory")
        at = 0
        read_to += length
    if len(buffer) > at:
        raise DatasetError(archive, "the central directory ends in the middle of an entry: the archive is corrupt")
    if len(entries) != expected:
        raise DatasetError(
            archive, f"the end record counts {expected:,} entries but the central directory holds {len(entries):,}"
        )
    return entries


def _entry(archive: str, fields: tuple[int, ...], variable: bytes, number: int) -> ZipEntry:
    (_, made_by, _, flags, method, _, _, crc, compressed, uncompressed, name_length, extra_length, _, disk, _, external,
     offset) = fields  # fmt: skip
    raw_name = variable[:name_length]
    extra = variable[name_length : name_length + extra_length]
    # Bit 11: the name is UTF-8; otherwise IBM 437, which this decodes too (every byte is a character there).
    name = raw_name.decode("utf-8", "replace") if flags & 0x800 else raw_name.decode("cp437")
    if 0xFFFFFFFF in (compressed, uncompressed, offset) or disk == 0xFFFF:
        uncompressed, compressed, offset = _zip64_extra(archive, name, extra, uncompressed, compressed, offset, disk)
    if made_by >> 8 == _UNIX and stat.S_ISLNK(external >> 16):
        raise DatasetError(archive, f"entry {name!r} is a symbolic link (links could point outside the archive)")
    return ZipEntry(name, method, flags, crc, compressed, uncompressed, offset, name.endswith(("/", "\\")))


def _zip64_extra(
    archive: str, name: str, extra: bytes, uncompressed: int, compressed: int, offset: int, disk: int
) -> tuple[int, int, int]:
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        position += 4 + length
        if tag != 0x0001:
            continue
        values = iter(struct.unpack_from(f"<{len(body) // 8}Q", body))
        try:
            if uncompressed == 0xFFFFFFFF:
                uncompressed = next(values)
            if compressed == 0xFFFFFFFF:
                compressed = next(values)
            if offset == 0xFFFFFFFF:
                offset = next(values)
        except StopIteration:
            break
        return uncompressed, compressed, offset
    raise DatasetError(archive, f"entry {name!r} needs a zip64 extra field and has none (or a short one)")


def unsafe_path_reason(name: str) -> str | None:
    """Why an entry name would land outside the archive root when extracted, or None when it stays inside."""
    if not name or "\x00" in name:
        return "has an empty name or a NUL byte in it"
    if name.startswith(("/", "\\")):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the archive root with '..'"
    return None


def _check_entries(archive: str, entries: list[ZipEntry], cd_offset: int, limits: ZipLimits) -> None:
    seen: set[str] = set()
    total = 0
    for entry in entries:
        reason = unsafe_path_reason(entry.name)
        if reason:
            raise DatasetError(archive, f"entry {entry.name!r} {reason}: every entry must stay inside the archive root")
        if entry.name in seen:
            raise DatasetError(archive, f"entry {entry.name!r} appears twice")
        seen.add(entry.name)
        if entry.flags & 0x1:
            raise DatasetError(archive, f"entry {entry.name!r} is encrypted")
        if entry.method not in (_STORED, _DEFLATED):
            raise DatasetError(
                archive, f"entry {entry.name!r} uses compression method {entry.method} (only stored and deflate)"
            )
        if entry.header_offset + _LOCAL.size > cd_offset:
            raise DatasetError(archive, f"entry {entry.name!r} starts outside the archive's data")
        if entry.method == _STORED and entry.compressed != entry.uncompressed:
            raise DatasetError(archive, f"entry {entry.name!r} is stored but its two sizes differ")
        if entry.uncompressed >= limits.ratio_floor and (
            entry.compressed == 0 or entry.uncompressed > entry.compressed * limits.max_ratio
        ):
            ratio = entry.uncompressed / max(entry.compressed, 1)
            raise DatasetError(
                archive,
                f"entry {entry.name!r} inflates {entry.compressed:,} bytes to {entry.uncompressed:,} "
                f"(ratio {ratio:,.0f}, at most {limits.max_ratio}): zip bomb by ratio",
            )
        total += entry.uncompressed
        if total > limits.max_total_uncompressed:
            raise DatasetError(
                archive,
                f"the entries inflate to more than {limits.max_total_uncompressed:,} bytes in all: zip bomb by size",
            )


async def entry_data_offset(reader: RangedReader, archive: str, entry: ZipEntry, cd_offset: int) -> int:
    """Where the entry's data starts, after its local header (whose name must match the central directory's)."""
    header = await _read_exact(reader, archive, entry.header_offset, _LOCAL.size, f"the local header of {entry.name!r}")
    signature, _, _, method, _, _, _, _, _, name_length, extra_length = _LOCAL.unpack(header)
    if signature != _LOCAL_SIG:
        raise DatasetError(archive, f"entry {entry.name!r}: no local header where the central directory says")
    if method != entry.method:
        raise DatasetError(archive, f"entry {entry.name!r}: the local header and the central directory disagree")
    start = int(entry.header_offset + _LOCAL.size + name_length + extra_length)
    if start + entry.compressed > cd_offset:
        raise DatasetError(archive, f"entry {entry.name!r} runs past the start of the central directory (truncated)")
    return start


async def iter_entry(
    reader: RangedReader,
    archive: str,
    entry: ZipEntry,
    cd_offset: int,
    *,
    limit: int | None = None,
    read_size: int = CHUNK,
) -> AsyncIterator[bytes]:
    """The entry's bytes, inflated a chunk at a time; stops after `limit` bytes, and checks size and CRC when whole.

    Output never exceeds the declared size: an entry that inflates past it is a bomb whose directory lied.
    """
    start = await entry_data_offset(reader, archive, entry, cd_offset)
    inflater = zlib.decompressobj(-15) if entry.method == _DEFLATED else None
    produced, crc, read_at = 0, 0, start
    end = start + entry.compressed
    wanted = entry.uncompressed if limit is None else min(limit, entry.uncompressed)
    pending = b""
    while produced < wanted:
        if inflater is None:
            if read_at >= end:
                break
            length = min(read_size, end - read_at, wanted - produced)
            out = await _read_exact(reader, archive, read_at, length, f"entry {entry.name!r}")
            read_at += length
        else:
            if not pending:
                if read_at >= end:
                    break
                length = min(read_size, end - read_at)
                pending = await _read_exact(reader, archive, read_at, length, f"entry {entry.name!r}")
                read_at += length
            try:
                out = inflater.decompress(pending, min(CHUNK, entry.uncompressed - produced + 1))
            except zlib.error as exc:
                raise DatasetError(archive, f"entry {entry.name!r} is corrupt ({exc})") from None
            pending = inflater.unconsumed_tail
            if not out and inflater.eof:
                break
            if produced + len(out) > entry.uncompressed:
                raise DatasetError(
                    archive, f"entry {entry.name!r} inflates past its declared {entry.uncompressed:,} bytes: zip bomb"
                )
        out = out[: wanted - produced]
        produced += len(out)
        crc = zlib.crc32(out, crc)
        if out:
            yield out
    if limit is None or limit >= entry.uncompressed:
        if produced != entry.uncompressed:
            raise DatasetError(archive, f"entry {entry.name!r} is shorter than its declared size (corrupt)")
        if crc != entry.crc:
            raise DatasetError(archive, f"entry {entry.name!r} fails its CRC check (corrupt)")


async def read_entry_head(reader: RangedReader, archive: str, entry: ZipEntry, cd_offset: int, length: int) -> bytes:
    """The first `length` bytes of the entry (fewer if it is shorter), inflated when it is deflated."""
    head = b""
    # A deflated head needs about as many compressed bytes as it has inflated ones: no 1 MiB GET for 64 bytes.
    async for chunk in iter_entry(reader, archive, entry, cd_offset, limit=length, read_size=max(length, 4096)):
        head += chunk
    return head
