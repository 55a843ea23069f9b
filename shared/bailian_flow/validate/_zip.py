"""Dataset zips checked by ranged reads: Wan image-to-video fine-tunes, and Qwen-VL packed images.

Wan sources (read 2026-12-07):
- "Fine-tune a video generation model" (www.alibabacloud.com/help/en/model-studio/wan-video-generation-finetune-guide,
  sections "Build a custom dataset" > "Training set format", "Validation set format", "Data requirements") and its
  Chinese twin "训练集与评测集" (help.aliyun.com/zh/model-studio, section "图生视频训练集"): a `.zip` holding
  `data.jsonl` (fixed name, at most 20 MB), first-frame images (BMP, JPEG, PNG, WEBP; at most 4096 x 4096), videos
  (MP4, MOV; at most 4096 x 4096); each line `{"prompt", "first_frame_path", "video_path"}`, first-and-last-frame
  (kf2v) adds `last_frame_path`; a validation set has no videos. At least 10 samples; zip at most 1 GB (API upload);
  file names English letters, digits, `_`, `-`; video length wan2.2 <= 5 s, wan2.5 and wan2.6 <= 10 s.
- "Video generation model fine-tuning API reference" (help.aliyun.com/zh/model-studio/wan-video-generation-finetune-api-
  reference, "上传数据集"): "zip 压缩包大小 ≤ 1GB"; models wan2.6-i2v, wan2.5-i2v-preview, wan2.2-i2v-flash (first
  frame), wan2.2-kf2v-flash (first and last frame); the newer reference adds wan2.7-i2v.

Not documented, so chosen strictly here: the entry count (`MAX_ENTRIES`), the inflation ratio (`MAX_RATIO`) and total
(`MAX_TOTAL_UNCOMPRESSED`), an index line's length, that `prompt` is required, that paths are matched exactly (no
`./` folding), the video length for wan2.7 (the strictest documented one, 5 s, holds). A video's length and frame size
come from its `moov` box (`_mp4.py`): a jump away when the video is stored, as zip tools store media.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import DatasetError
from ._media import extension_type, image_size, same_family, sniff
from ._mp4 import WAN_MAX_VIDEO_SECONDS, max_video_seconds, video_entry_problem
from ._vl import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, check_record, image_fields, image_problem, is_vl_model
from ._zipdir import RangedReader, ZipEntry, ZipLimits, iter_entry, read_central_directory, read_entry_head

INDEX = "data.jsonl"
MAX_INDEX_BYTES = 20 * 10**6  # "最大支持 20MB": decimal, the smaller reading
MAX_INDEX_LINE = 1 << 20
MIN_TRAINING_SAMPLES = 10
WAN_MAX_SIDE = 4096
WAN_IMAGES = frozenset({"bmp", "jpeg", "png", "webp"})
WAN_VIDEOS = frozenset({"mp4", "mov"})
VL_IMAGES = frozenset({"bmp", "jpeg", "png", "tiff", "webp"})
MEDIA_READS_AT_ONCE = 8
HEAD_BYTES = 64 << 10  # enough for a JPEG's SOF marker behind ordinary EXIF; sizes beyond it are left unknown

WAN_MODES: dict[str, Literal["i2v", "kf2v"]] = {
    "wan2.7-i2v": "i2v",
    "wan2.6-i2v": "i2v",
    "wan2.5-i2v-preview": "i2v",
    "wan2.2-i2v-flash": "i2v",
    "wan2.2-kf2v-flash": "kf2v",
}

WAN_LIMITS = ZipLimits(
    max_archive_bytes=10**9,  # "≤ 1GB": decimal, the smaller reading
    max_entries=10_000,
    max_central_directory_bytes=8 << 20,
    max_total_uncompressed=2 * 10**9,
    max_ratio=100,  # media barely compress; a JSONL of prompts compresses ~5x
    ratio_floor=1 << 20,
)
VL_LIMITS = ZipLimits(
    max_archive_bytes=2 * 10**9,  # "最大支持 2 GB"
    max_entries=100_000,
    max_central_directory_bytes=32 << 20,
    max_total_uncompressed=4 * 10**9,
    max_ratio=100,
    ratio_floor=1 << 20,
)
_NAME_PART = re.compile(r"[A-Za-z0-9_-]+")
_FILE_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)?")

ArchiveKind = Literal["wan-i2v", "wan-kf2v", "vl"]
Role = Literal["training", "validation"]


@dataclass(frozen=True)
class ArchiveStats:
    """A zip that passed: what it is, how many samples, and warnings that never block an upload."""

    kind: ArchiveKind
    role: Role
    records: int
    entries: int
    bytes: int
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "role": self.role,
            "records": self.records,
            "entries": self.entries,
            "bytes": self.bytes,
            "warnings": list(self.warnings),
        }


class _Full(Exception):
    pass


@dataclass
class _Problems:
    cap: int
    found: list[DatasetError] = field(default_factory=list)

    def add(self, error: DatasetError) -> None:
        self.found.append(error)
        if len(self.found) >= self.cap:
            raise _Full

    def raise_any(self) -> None:
        if self.found:
            first = self.found[0]
            first.errors = tuple(self.found)
            raise first


@dataclass(frozen=True)
class _Wanted:
    line: int
    field: str
    entry: str
    media: Literal["image", "video"]


def archive_kind(model: str | None) -> ArchiveKind | None:
    if model in WAN_MODES:
        return "wan-kf2v" if WAN_MODES[model] == "kf2v" else "wan-i2v"
    return "vl" if is_vl_model(model) else None


async def validate_archive(
    reader: RangedReader,
    object_name: str,
    *,
    model: str | None = None,
    role: Role = "training",
    max_errors: int = 100,
) -> ArchiveStats:
    """Check a dataset zip without holding it: raises the first `DatasetError`, every one found in `.errors`.

    The kind comes from `model` when given (a Wan or a Qwen-VL model), else from the index's first line.
    """
    kind = archive_kind(model)
    limits = VL_LIMITS if kind == "vl" else WAN_LIMITS
    directory = await read_central_directory(reader, object_name, limits)
    entries, cd_offset = directory.entries, directory.start
    by_name = {entry.name: entry for entry in entries}
    index = _find_index(object_name, by_name)
    where = f"{object_name}:{INDEX}"
    if index.uncompressed > MAX_INDEX_BYTES:
        raise DatasetError(where, f"the index is {index.uncompressed:,} bytes (at most {MAX_INDEX_BYTES:,})")
    problems = _Problems(max_errors)
    wanted: list[_Wanted] = []
    records = 0
    try:
        async for line, raw in _index_lines(reader, object_name, index, cd_offset):
            if raw is None:
                problems.add(DatasetError(where, f"line longer than {MAX_INDEX_LINE:,} bytes", line=line))
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                problems.add(DatasetError(where, f"not valid JSON ({exc})", line=line))
                continue
            if kind is None:
                kind = _kind_of(record)
            records += 1
            for error in _check_line(kind, record, line, where, role, model, wanted):
                problems.add(error)
        if kind is None:
            raise DatasetError(where, "the index holds no sample")
        await _check_media(reader, object_name, kind, by_name, wanted, cd_offset, problems, model)
        if kind != "vl" and role == "training" and records < MIN_TRAINING_SAMPLES:
            reason = f"{records} sample(s): a training set needs at least {MIN_TRAINING_SAMPLES}"
            problems.add(DatasetError(where, reason))
    except _Full:
        pass
    problems.raise_any()
    assert kind is not None
    named = {want.entry for want in wanted} | {INDEX}
    unused = sorted(e.name for e in entries if not e.is_dir and e.name not in named and kind != "vl")
    warnings = [f"{len(unused)} entr(y/ies) not named by {INDEX}, ignored: {', '.join(unused[:5])}"] if unused else []
    return ArchiveStats(kind, role, records, len(entries), reader.size, tuple(warnings))


def _find_index(archive: str, by_name: dict[str, ZipEntry]) -> ZipEntry:
    index = by_name.get(INDEX)
    if index is not None and not index.is_dir:
        return index
    nested = sorted(name for name in by_name if posixpath.basename(name.replace("\\", "/")) == INDEX)
    if nested:
        raise DatasetError(
            archive, f"{INDEX} must be at the archive root, found {nested[0]!r} (zip the files, not their folder)"
        )
    raise DatasetError(archive, f"no {INDEX} index at the archive root")


async def _index_lines(
    reader: RangedReader, archive: str, index: ZipEntry, cd_offset: int
) -> AsyncIterator[tuple[int, bytes | None]]:
    line, buffer, skipping = 0, b"", False
    async for chunk in iter_entry(reader, archive, index, cd_offset):
        buffer += chunk
        start = 0  # cut lines at offsets: slicing the rest off per line would copy the chunk once per line
        while True:
            cut = buffer.find(b"\n", start)
            if cut < 0:
                buffer = buffer[start:]
                if len(buffer) > MAX_INDEX_LINE:
                    if not skipping:
                        line += 1
                        yield line, None
                    skipping, buffer = True, b""
                break
            raw, start = buffer[start:cut], cut + 1
            if skipping:
                skipping = False
                continue
            line += 1
            yield line, raw if len(raw) <= MAX_INDEX_LINE else None
    if buffer and not skipping:
        yield line + 1, buffer if len(buffer) <= MAX_INDEX_LINE else None


def _kind_of(record: Any) -> ArchiveKind:
    if isinstance(record, dict) and "messages" in record:
        return "vl"
    if isinstance(record, dict) and "last_frame_path" in record:
        return "wan-kf2v"
    return "wan-i2v"


def _check_line(
    kind: ArchiveKind, record: Any, line: int, where: str, role: Role, model: str | None, wanted: list[_Wanted]
) -> list[DatasetError]:
    errors: list[DatasetError] = []
    if kind == "vl":
        errors.extend(check_record(record, line=line, object_name=where, model=model))
        if not errors:
            for at, value in image_fields(record):
                if "/" in value or "\\" in value:
                    errors.append(
                        DatasetError(where, "name the image file only, without its folder", line=line, field=at)
                    )
                else:
                    wanted.append(_Wanted(line, at, value, "image"))
        return errors
    if not isinstance(record, dict):
        return [DatasetError(where, "expected a JSON object", line=line)]
    fields: dict[str, Literal["image", "video"] | None] = {"prompt": None, "first_frame_path": "image"}
    if kind == "wan-kf2v":
        fields["last_frame_path"] = "image"
    if role == "training":
        fields["video_path"] = "video"
    for extra in record:
        if extra not in fields:
            hint = " (first-and-last-frame fields in a first-frame dataset?)" if extra == "last_frame_path" else ""
            errors.append(DatasetError(where, f"unknown field{hint}", line=line, field=str(extra)))
    for key, media in fields.items():
        got = record.get(key)
        if key not in record:
            errors.append(DatasetError(where, "missing", line=line, field=key))
        elif not isinstance(got, str) or not got.strip():
            errors.append(DatasetError(where, "expected a non-empty string", line=line, field=key))
        elif media is not None:
            wanted.append(_Wanted(line, key, got, media))
    return errors


async def _check_media(
    reader: RangedReader,
    archive: str,
    kind: ArchiveKind,
    by_name: dict[str, ZipEntry],
    wanted: list[_Wanted],
    cd_offset: int,
    problems: _Problems,
    model: str | None,
) -> None:
    where = f"{archive}:{INDEX}"
    lookup = by_name
    if kind == "vl":
        lookup = {}
        for entry in by_name.values():
            base = posixpath.basename(entry.name.replace("\\", "/"))
            if not entry.is_dir and base in lookup:
                problems.add(DatasetError(archive, f"two files named {base!r}: image names must be unique"))
            lookup[base] = entry
    todo: dict[str, tuple[ZipEntry, str]] = {}
    for want in wanted:
        found = lookup.get(want.entry)
        if found is not None and not found.is_dir:
            todo.setdefault(found.name, (found, want.media))
    # Each check is a ranged GET or two over OSS: a few at a time, not one after another.
    gate = asyncio.Semaphore(MEDIA_READS_AT_ONCE)

    async def check(entry: ZipEntry, media: str) -> str | None:
        async with gate:
            return await _media_problem(reader, archive, kind, entry, media, cd_offset, model)

    results = await asyncio.gather(*(check(entry, media) for entry, media in todo.values()))
    checked = dict(zip(todo, results, strict=True))
    for want in wanted:
        found = lookup.get(want.entry)
        if found is None or found.is_dir:
            reason = f"names {want.entry!r}, which is not in the archive"
            problems.add(DatasetError(where, reason, line=want.line, field=want.field))
            continue
        problem = checked[found.name]
        if problem:
            problems.add(DatasetError(where, f"{want.entry!r}: {problem}", line=want.line, field=want.field))


async def _media_problem(
    reader: RangedReader,
    archive: str,
    kind: ArchiveKind,
    entry: ZipEntry,
    media: str,
    cd_offset: int,
    model: str | None,
) -> str | None:
    name_problem = _name_problem(entry.name)
    if name_problem:
        return name_problem
    declared = extension_type(entry.name)
    allowed = (VL_IMAGES if kind == "vl" else WAN_IMAGES) if media == "image" else WAN_VIDEOS
    if declared not in allowed:
        listed = ", ".join(sorted(allowed)).upper()
        return f"a {media} must be one of {listed} (by extension)"
    if kind == "vl" and entry.uncompressed > MAX_IMAGE_BYTES:
        return f"the image is {entry.uncompressed:,} bytes (at most {MAX_IMAGE_BYTES:,})"
    head = await read_entry_head(reader, archive, entry, cd_offset, HEAD_BYTES if media == "image" else 64)
    if media == "image":
        return image_problem(declared, head, MAX_IMAGE_SIDE if kind == "vl" else WAN_MAX_SIDE)
    found = sniff(head)
    if found is None or not same_family(declared, found):
        return f"the entry is not a {declared.upper()} video (its first bytes say {(found or 'unknown').upper()})"
    return await video_entry_problem(reader, archive, entry, cd_offset, model, WAN_MAX_SIDE)


def _name_problem(name: str) -> str | None:
    parts = name.replace("\\", "/").split("/")
    if not all(_NAME_PART.fullmatch(part) for part in parts[:-1]) or not _FILE_NAME.fullmatch(parts[-1]):
        return "file and folder names may use only English letters, digits, '_' and '-'"
    return None


async def validate_zip_file(
    path: Path, *, model: str | None = None, role: Role = "training", max_errors: int = 100
) -> ArchiveStats:
    """`validate_archive` over a local file."""
    from ._zipdir import FileRangedReader

    reader = FileRangedReader(path)
    try:
        return await validate_archive(reader, path.name, model=model, role=role, max_errors=max_errors)
    finally:
        reader.close()


__all__ = [
    "WAN_MAX_VIDEO_SECONDS",
    "ArchiveStats",
    "image_size",
    "max_video_seconds",
    "validate_archive",
    "validate_zip_file",
]
