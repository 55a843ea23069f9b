"""Pack a VL JSONL that names local images into the zip the VL fine-tune docs describe (what `put` can upload).

The documented form ("训练集与评测集", section "SFT 视觉理解（千问VL）", 压缩包要求): `data.jsonl` at the root, images
named in it by bare file name, unique across the archive, names of ASCII letters, digits, `_` and `-`. Each local
image is stored once under `images/` (two references to one file share it; two files with one name get `-2`, `-3`
...), and `data.jsonl` is the source with each image value replaced by that name. Memory holds the name map only.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ._errors import DatasetError
from ._vl import classify_ref, image_fields, validate_vl_jsonl

MAX_PACKED_BYTES = 2 * 10**9  # "最大支持 2 GB"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class PackResult:
    records: int
    images: int
    bytes: int


def pack_vl_jsonl(source: Path, target: Path, *, model: str | None = None) -> PackResult:
    """Validate `source`, then write `target` (a zip); raises `DatasetError` (and writes nothing) when it cannot."""
    report = validate_vl_jsonl(source, model=model)
    remote = [ref for ref in report.images if ref.kind != "local"]
    if remote:
        ref = remote[0]
        raise DatasetError(
            source.name,
            f"{ref.value[:60]!r} is a URL: a packed dataset holds its images (download it next to the file)",
            line=ref.line,
            field=ref.field,
        )
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for ref in report.images:
        path = (source.parent / ref.value).resolve()
        if path not in names:
            names[path] = _unique(path, taken)
    partial = target.with_name(target.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for path, name in names.items():
                # Images are already compressed: stored, so a reader can jump over them.
                archive.write(path, f"images/{name}", compress_type=zipfile.ZIP_STORED)
            with (
                source.open("rb") as lines,
                archive.open(zipfile.ZipInfo("data.jsonl", (2026, 1, 1, 0, 0, 0)), "w", force_zip64=True) as index,
            ):
                for raw in lines:
                    if raw.strip():
                        index.write(_rewrite(raw, source.parent, names).encode() + b"\n")
        size = partial.stat().st_size
        if size > MAX_PACKED_BYTES:
            raise DatasetError(target.name, f"the packed dataset is {size:,} bytes (at most {MAX_PACKED_BYTES:,})")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return PackResult(report.records, len(names), size)


def _unique(path: Path, taken: set[str]) -> str:
    stem = _UNSAFE.sub("_", path.stem).strip("_") or "image"
    suffix = path.suffix.lower()
    name, counter = f"{stem}{suffix}", 1
    while name in taken:
        counter += 1
        name = f"{stem}-{counter}{suffix}"
    taken.add(name)
    return name


def _rewrite(raw: bytes, base: Path, names: dict[Path, str]) -> str:
    record = json.loads(raw)
    for _, value in list(image_fields(record)):
        if classify_ref(value) == "local":
            packed = names[(base / value).resolve()]
            for message in record["messages"]:
                for part in message["content"]:
                    if isinstance(part, dict) and part.get("image") == value:
                        part["image"] = packed
    return json.dumps(record, ensure_ascii=False)
