"""Zips written byte by byte (APPNOTE 6.3.10), so a test can make every field say what it wants: honest or hostile."""

from __future__ import annotations

import json
import random
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORED, DEFLATED = 0, 8


def png(width: int = 16, height: int = 16, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG of one colour."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    """The first markers of a baseline JPEG (SOI, APP0, SOF0): enough for a sniffer and a size reader."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def mp4(seconds: float = 3, *, width: int = 64, height: int = 48, moov: bool = True, mdat_first: int = 0) -> bytes:
    """An ISO base media file: `ftyp`, a `moov` (`mvhd` with the duration, a `trak` whose `tkhd` has the frame size)
    and an `mdat`; `mdat_first` bytes of `mdat` go before the `moov` (a file not "fast-started")."""

    def box(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + tag + body

    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + bytes(80))
    tkhd = box(b"tkhd", bytes(4) + bytes(72) + struct.pack(">II", width << 16, height << 16))
    movie = box(b"moov", mvhd + box(b"trak", box(b"edts", bytes(12)) + tkhd)) if moov else b""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    if mdat_first:
        # Media bytes do not compress: random ones keep a deflated copy honest about its ratio.
        return ftyp + box(b"mdat", random.Random(mdat_first).randbytes(mdat_first)) + movie
    return ftyp + movie + box(b"mdat", bytes(16))


@dataclass
class Entry:
    name: str
    data: bytes
    method: int = DEFLATED
    symlink: bool = False
    declared_size: int | None = None  # the uncompressed size the directory claims (a liar for bomb tests)


def build_zip(entries: list[Entry], *, zip64: bool = False, comment: bytes = b"") -> bytes:
    """An archive of `entries`; `zip64` puts every size and offset in zip64 extras and adds the zip64 end records."""
    body = bytearray()
    directory = bytearray()
    for entry in entries:
        raw = entry.data
        packed = raw if entry.method == STORED else _deflate(raw)
        size = len(raw) if entry.declared_size is None else entry.declared_size
        crc = zlib.crc32(raw)
        name = entry.name.encode()
        offset = len(body)
        local_extra = struct.pack("<HHQQ", 1, 16, size, len(packed)) if zip64 else b""
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (len(packed), size)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0x800, entry.method, 0, 0x21, crc, *sizes, len(name),
                            len(local_extra))  # fmt: skip
        body += name + local_extra + packed
        central_extra = struct.pack("<HHQQQ", 1, 24, size, len(packed), offset) if zip64 else b""
        made_by = (3 << 8) | 45
        external = ((stat.S_IFLNK if entry.symlink else stat.S_IFREG) | 0o644) << 16
        central_sizes = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (len(packed), size)
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, made_by, 45, 0x800, entry.method, 0, 0x21, crc, *central_sizes,
            len(name), len(central_extra), 0, 0, 0, external, 0xFFFFFFFF if zip64 else offset,
        )  # fmt: skip
        directory += name + central_extra
    cd_offset = len(body)
    out = bytes(body) + bytes(directory)
    count = len(entries)
    if zip64:
        record_at = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(directory), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, record_at, 1)
        return (
            out
            + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
            + comment
        )
    return (
        out
        + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), cd_offset, len(comment))
        + comment
    )


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def wan_entries(samples: int = 10, *, kf2v: bool = False, folders: bool = False) -> list[Entry]:
    """A valid Wan training set: `data.jsonl`, then each sample's frames and video."""
    lines: list[dict[str, Any]] = []
    media: list[Entry] = []
    image_dir, video_dir = ("image/", "video/") if folders else ("", "")
    for n in range(1, samples + 1):
        line: dict[str, Any] = {
            "prompt": f"sample {n}, then the s86b5p effect",
            "first_frame_path": f"{image_dir}image_{n}.png",
        }
        media.append(Entry(f"{image_dir}image_{n}.png", png(rgb=(n * 20 % 256, 40, 90))))
        if kf2v:
            line["last_frame_path"] = f"{image_dir}image_{n}_last.png"
            media.append(Entry(f"{image_dir}image_{n}_last.png", png(rgb=(40, n * 20 % 256, 90))))
        line["video_path"] = f"{video_dir}video_{n}.mp4"
        media.append(Entry(f"{video_dir}video_{n}.mp4", mp4(), method=STORED))
        lines.append(line)
    return [index_entry(lines), *media]


def index_entry(lines: list[Any]) -> Entry:
    """`data.jsonl` of `lines`: objects are serialised, strings written as they are (to write broken lines)."""
    text = "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)
    return Entry("data.jsonl", text.encode())


def write_zip(path: Path, entries: list[Entry], **options: Any) -> Path:
    path.write_bytes(build_zip(entries, **options))
    return path
