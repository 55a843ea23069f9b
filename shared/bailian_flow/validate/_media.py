"""Media files told apart by their first bytes, and an image's size read from its header where that is cheap.

Only headers are parsed (never a pixel): PNG's IHDR, BMP's info header, WEBP's VP8/VP8L/VP8X chunk, JPEG's first
SOFn marker within the bytes given, TIFF's first IFD within them. A size that is not in those bytes is reported as
unknown (None), never guessed.
"""

from __future__ import annotations

import struct
from typing import Literal

MediaType = Literal["bmp", "jpeg", "png", "webp", "tiff", "mp4", "mov"]

# The extensions each media type is written with (lower-cased, without the dot).
EXTENSIONS: dict[str, MediaType] = {
    "bmp": "bmp",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "png": "png",
    "webp": "webp",
    "tif": "tiff",
    "tiff": "tiff",
    "mp4": "mp4",
    "mov": "mov",
}

# ISO base media (MP4, QuickTime): the first box of a QuickTime file is not always `ftyp`.
_QUICKTIME_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def extension_type(name: str) -> MediaType | None:
    _, dot, extension = name.rpartition(".")
    return EXTENSIONS.get(extension.lower()) if dot else None


def sniff(head: bytes) -> MediaType | None:
    """The media type the bytes start with, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_FIRST_BOXES:
        return "mov"
    return None


def same_family(declared: MediaType, found: MediaType) -> bool:
    """MP4 and QuickTime are one container family: a `.mov` with an `isom` brand plays the same."""
    return declared == found or {declared, found} <= {"mp4", "mov"}


def image_size(kind: MediaType, head: bytes) -> tuple[int, int] | None:
    """(width, height) from the header bytes, or None when they are not in `head`."""
    try:
        if kind == "png" and len(head) >= 24:
            width, height = struct.unpack(">II", head[16:24])
            return int(width), int(height)
        if kind == "bmp" and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
        if kind == "webp":
            return _webp_size(head)
        if kind == "jpeg":
            return _jpeg_size(head)
        if kind == "tiff":
            return _tiff_size(head)
    except struct.error:
        return None
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", head[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if position + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def _tiff_size(head: bytes) -> tuple[int, int] | None:
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", head[4:8])
    if ifd + 2 > len(head):
        return None
    (count,) = struct.unpack(order + "H", head[ifd : ifd + 2])
    found: dict[int, int] = {}
    for index in range(count):
        at = ifd + 2 + 12 * index
        if at + 12 > len(head):
            return None
        tag, kind, _, value = struct.unpack(order + "HHI4s", head[at : at + 12])
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None
