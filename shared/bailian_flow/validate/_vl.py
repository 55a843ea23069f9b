"""Qwen-VL (vision-language) fine-tune datasets: ChatML lines whose `content` is a list of text and image parts.

Sources (read 2026-12-07):
- "训练集与评测集" (help.aliyun.com/zh/model-studio, section "SFT 视觉理解（千问VL）"): a line is
  `{"messages": [{"role", "content": [{"text": ...} | {"image": name, "resized_width"?, "resized_height"?}]}]}`;
  a `system` content must be the list form; `video` parts are for Qwen3.5 and later VL models only (so not the
  qwen3-vl-8b models here). Packaging ("压缩包要求"): a ZIP of at most 2 GB with `data.jsonl` at its root, images
  named by bare file name (no folder), unique across folders, ASCII letters/digits/`_`/`-`, each at most
  1024 x 1024 px and 10 MB, `.bmp .jpeg .jpg .png .tif .tiff .webp`. A thinking model follows the thinking format
  (a `<think>` block only in the last assistant turn).
- "使用 API 或命令行进行模型调优" / "Fine-tune with the API or CLI" (help.aliyun.com/zh/model-studio and
  www.alibabacloud.com/help/en/model-studio/fine-tuning-api-guide, section "hyper_parameters 内支持的设置"):
  `freeze_vit` (default true) freezes the vision backbone; "only with freeze_vit true can the model be billed by
  token usage".
- Image references other than packed names: the docs document `http(s)://` URLs and `oss://` temporary URLs (valid
  48 h, `X-DashScope-OssResourceResolve: enable`) for calling VL models (seed: "Upload Local File for Temporary OSS
  URL"), not for training files. A JSONL that names URLs is therefore accepted with a warning, and a local path is
  reported so `put` can pack or upload it; every other scheme (`file:`, `data:` ...) is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import DatasetError
from ._media import extension_type, image_size, sniff

VL_MODELS = ("qwen3-vl-8b-instruct", "qwen3-vl-8b-thinking")
IMAGE_TYPES = frozenset({"bmp", "jpeg", "png", "tiff", "webp"})
MAX_IMAGE_SIDE = 1024
MAX_IMAGE_BYTES = 10 * 10**6  # "最大不超过10MB": decimal megabytes, the smaller reading
MAX_LINE_BYTES = 4 << 20  # undocumented; a line of text and file names is far smaller
OSS_URL_HOURS = 48
_PART_KEYS = {"text": {"text"}, "image": {"image", "resized_width", "resized_height"}}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")

RefKind = Literal["packed", "url", "oss", "local"]


@dataclass(frozen=True)
class ImageRef:
    line: int
    field: str
    value: str
    kind: RefKind


@dataclass
class VlReport:
    """A VL JSONL checked: its records, and the images it names by kind (`local` ones need `put` to send them)."""

    records: int = 0
    images: list[ImageRef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def local_images(self) -> list[ImageRef]:
        return [ref for ref in self.images if ref.kind == "local"]


def is_vl_model(model: str | None) -> bool:
    return bool(model) and str(model).startswith(("qwen3-vl-", "qwen-vl-", "qwen2.5-vl-", "qwen3.5-vl-"))


def freeze_vit_warning(model: str | None, hyper_parameters: Mapping[str, Any] | None) -> str | None:
    """The billing warning when a VL fine-tune sets `freeze_vit` false (its default is true), else None."""
    if not is_vl_model(model):
        return None
    value = (hyper_parameters or {}).get("freeze_vit", True)
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return None
    return (
        f"freeze_vit is {value!r}: only a VL model trained with freeze_vit true can be billed by token usage "
        "(Bailian fine-tune docs, hyper_parameters: freeze_vit); leave it out or set it true"
    )


def classify_ref(value: str) -> RefKind | None:
    """How an image is referenced: None for a scheme the docs do not name (file:, data:, ftp:, ...)."""
    scheme = _SCHEME.match(value)
    if scheme is None or (len(scheme.group(1)) == 1 and value[1:3] in (":\\", ":/")):  # C:\x.png is local
        return "local"
    name = scheme.group(1).lower()
    if name in ("http", "https"):
        return "url"
    if name == "oss":
        return "oss"
    return None


def check_record(record: Any, *, line: int, object_name: str, model: str | None = None) -> Iterator[DatasetError]:
    """Every problem of one parsed line; image values are checked for type only (see `image_fields`)."""

    def error(reason: str, at: str | None) -> DatasetError:
        return DatasetError(object_name, reason, line=line, field=at)

    if not isinstance(record, dict):
        yield error("expected a JSON object", None)
        return
    for key in record:
        if key != "messages":
            yield error(f"unknown key {key!r} (a VL line holds only messages)", key)
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        yield error("expected a non-empty list of messages", "messages")
        return
    expected = "user"
    assistants = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"]
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        if not isinstance(message, dict):
            yield error("expected an object with role and content", at)
            continue
        role = message.get("role")
        unknown = set(message) - {"role", "content"}
        if unknown:
            yield error(f"unknown key {sorted(unknown)[0]!r}", f"{at}.{sorted(unknown)[0]}")
        if role == "system" and index == 0:
            pass
        elif role != expected:
            yield error(f"expected role {expected!r}, got {role!r}", f"{at}.role")
        else:
            expected = "assistant" if role == "user" else "user"
        yield from _check_content(message.get("content"), role, at, error)
        if model == "qwen3-vl-8b-thinking" and role == "assistant" and index != (assistants or [-1])[-1]:
            content = message.get("content")
            texts = [p.get("text") for p in content if isinstance(p, dict)] if isinstance(content, list) else []
            if any(isinstance(t, str) and "<think>" in t for t in texts):
                yield error("only the last assistant turn may hold a <think> block", f"{at}.content")
    if isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant":
        last = f"messages[{len(messages) - 1}]"
        yield error("the last message must be the assistant's (what the model learns)", last)


def _check_content(content: Any, role: Any, at: str, error: Any) -> Iterator[DatasetError]:
    if not isinstance(content, list) or not content:
        yield error("expected a non-empty list of parts ([{'text': ...}, {'image': ...}])", f"{at}.content")
        return
    for position, part in enumerate(content):
        where = f"{at}.content[{position}]"
        if not isinstance(part, dict):
            yield error("expected an object ({'text': ...} or {'image': ...})", where)
            continue
        if "video" in part:
            yield error("video parts are for Qwen3.5 and later VL models only", f"{where}.video")
            continue
        kind = "image" if "image" in part else "text" if "text" in part else None
        if kind is None:
            yield error("a part needs 'text' or 'image'", where)
            continue
        if role != "user" and kind == "image":
            yield error(f"images belong in user turns, not {role!r}", f"{where}.image")
        for key in set(part) - _PART_KEYS[kind]:
            yield error(f"unknown key {key!r} in a {kind} part", f"{where}.{key}")
        value = part[kind]
        if not isinstance(value, str) or not value.strip():
            yield error(f"expected a non-empty string, got {type(value).__name__}", f"{where}.{kind}")
        for size_key in ("resized_width", "resized_height"):
            size = part.get(size_key)
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
                yield error("expected a positive integer (pixels)", f"{where}.{size_key}")


def image_fields(record: Any) -> Iterator[tuple[str, str]]:
    """(field, value) of every image part of a record that `check_record` accepted."""
    for index, message in enumerate(record.get("messages") or []):
        for position, part in enumerate(message.get("content") or []):
            if isinstance(part, dict) and isinstance(part.get("image"), str):
                yield f"messages[{index}].content[{position}].image", part["image"]


def check_local_image(path: Path) -> str | None:
    """Why a local image cannot be used, or None (header bytes only)."""
    declared = extension_type(path.name)
    try:
        if not path.is_file():
            return f"no such file: {path}"
        if declared not in IMAGE_TYPES:
            return "an image must be .bmp, .jpeg, .jpg, .png, .tif, .tiff or .webp"
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            return f"the image is {size:,} bytes (at most {MAX_IMAGE_BYTES:,})"
        with path.open("rb") as file:
            head = file.read(64 << 10)
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long, no permission
        return f"cannot read {str(path)[:80]!r} ({type(exc).__name__})"
    return image_problem(declared, head)


def image_problem(declared: Any, head: bytes, max_side: int = MAX_IMAGE_SIDE) -> str | None:
    found = sniff(head)
    if found is None:
        return f"the file is not an image (its first bytes match no {declared.upper()} header)"
    if found != declared:
        return f"the file is {found.upper()} but its extension says {declared.upper()}"
    dimensions = image_size(found, head)
    if dimensions and max(dimensions) > max_side:
        return f"the image is {dimensions[0]}x{dimensions[1]} (at most {max_side}x{max_side})"
    return None


def validate_vl_jsonl(path: Path, *, model: str | None = None, max_errors: int = 100) -> VlReport:
    """Check a VL JSONL line by line (flat memory); raises the first `DatasetError` with every one in `.errors`."""
    report = VlReport()
    problems: list[DatasetError] = []
    name = path.name
    with path.open("rb") as file:
        for line_number, raw in enumerate(_lines(file), start=1):
            if len(problems) >= max_errors:
                break
            if raw is None:
                problems.append(DatasetError(name, f"line longer than {MAX_LINE_BYTES:,} bytes", line=line_number))
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(DatasetError(name, f"not valid JSON ({exc})", line=line_number))
                continue
            found = list(check_record(record, line=line_number, object_name=name, model=model))
            problems.extend(found)
            report.records += 1
            if found:
                continue
            for at, value in image_fields(record):
                problem = _check_reference(path.parent, value, report, line_number, at)
                if problem:
                    problems.append(DatasetError(name, problem, line=line_number, field=at))
    if not problems and report.records == 0:
        problems.append(DatasetError(name, "file is empty"))
    if problems:
        first = problems[0]
        first.errors = tuple(problems[:max_errors])
        raise first
    kinds = {ref.kind for ref in report.images}
    if kinds & {"url", "oss"}:
        report.warnings.append(
            "the VL fine-tune docs document images packed in a zip with data.jsonl; URL references are documented "
            "for calling models, not for training files"
        )
    if "oss" in kinds:
        report.warnings.append(f"oss:// temporary URLs expire {OSS_URL_HOURS} h after upload: the run must start first")
    if report.local_images:
        report.warnings.append(f"{len(report.local_images)} local image(s): put must pack or upload them")
    return report


def _check_reference(base: Path, value: str, report: VlReport, line: int, at: str) -> str | None:
    kind = classify_ref(value)
    if kind is None:
        return f"unsupported image reference {value[:40]!r}: use an http(s):// or oss:// URL or a local file"
    report.images.append(ImageRef(line, at, value, kind))
    if kind == "local":
        return check_local_image(base / value)
    return None


def _lines(file: Any) -> Iterator[bytes | None]:
    while True:
        raw = file.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the overlong line
                raw = file.readline(MAX_LINE_BYTES + 1)
            yield None
            continue
        yield raw
