"""`validate_path`: one entry point for the datasets that are not plain text (a Wan or VL zip, a VL JSONL).

It answers in the report shape of `bailian-flow validate` (cli/validate.py), so that command can hand a path to it
first and fall back to the text validators when it answers None.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import DatasetError
from ._vl import freeze_vit_warning, is_vl_model, validate_vl_jsonl
from ._zip import Role, validate_zip_file


def validate_path(
    path: Path,
    *,
    model: str | None = None,
    role: Role = "training",
    hyper_parameters: Mapping[str, Any] | None = None,
    max_errors: int = 100,
) -> dict[str, Any] | None:
    """The report for a `.zip` (Wan or VL) or a VL JSONL; None for any other file (a text dataset)."""
    if path.suffix.lower() == ".zip":
        return _zip_report(path, model, role, max_errors)
    if path.suffix.lower() == ".jsonl" and (is_vl_model(model) or _looks_vl(path)):
        return _vl_report(path, model, hyper_parameters, max_errors)
    return None


def _report(kind: str, model: str | None, records: int, errors: list[DatasetError], cap: int) -> dict[str, Any]:
    return {
        "ok": not errors,
        "type": kind,
        "model": model,
        "records": records,
        "tokens": None,
        "cost": None,
        "errors": [{**error.brief(), "object": error.object_name} for error in errors],
        "truncated": len(errors) >= cap,
        "warnings": [],
        "notes": [],
    }


def _zip_report(path: Path, model: str | None, role: Role, cap: int) -> dict[str, Any]:
    try:
        stats = asyncio.run(validate_zip_file(path, model=model, role=role, max_errors=cap))
    except DatasetError as exc:
        return _report("zip", model, 0, list(exc.errors), cap)
    report = _report(stats.kind, model, stats.records, [], cap)
    report.update(entries=stats.entries, bytes=stats.bytes, role=stats.role, warnings=list(stats.warnings))
    report["notes"].append("no token count or cost for media datasets: the service counts their tokens")
    return report


def _vl_report(path: Path, model: str | None, hyper_parameters: Mapping[str, Any] | None, cap: int) -> dict[str, Any]:
    try:
        vl = validate_vl_jsonl(path, model=model, max_errors=cap)
    except DatasetError as exc:
        return _report("vl", model, 0, list(exc.errors), cap)
    report = _report("vl", model, vl.records, [], cap)
    report["warnings"] = list(vl.warnings)
    report["images"] = {kind: sum(1 for ref in vl.images if ref.kind == kind) for kind in ("url", "oss", "local")}
    report["local_images"] = sorted({ref.value for ref in vl.local_images})
    warning = freeze_vit_warning(model or "qwen3-vl-", hyper_parameters)
    if warning:
        report["warnings"].append(warning)
    return report


def _looks_vl(path: Path) -> bool:
    """True when the first non-empty line is a chat whose content is a list of parts (the VL form)."""
    with path.open("rb") as file:
        for raw in iter(lambda: file.readline(1 << 20), b""):
            if raw.strip():
                try:
                    record = json.loads(raw)
                except ValueError:
                    return False
                messages = record.get("messages") if isinstance(record, dict) else None
                return isinstance(messages, list) and any(
                    isinstance(m, dict) and isinstance(m.get("content"), list) for m in messages
                )
    return False
