"""Bailian's file-name rule (§9: stem ≤120 chars of ASCII letters, digits, `_`, `-`) and training types."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from ._errors import DatasetKind

MAX_STEM_LENGTH = 120
_STEM = re.compile(r"[A-Za-z0-9_-]+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
_KIND_BY_TRAINING_TYPE: dict[str, DatasetKind] = {
    "sft": "sft",
    "efficient_sft": "sft",
    "dpo_full": "dpo",
    "dpo_lora": "dpo",
    "cpt": "cpt",
}


def kind_for_training_type(training_type: str) -> DatasetKind:
    """The dataset format a fine-tune `training_type` (bailian-api.md §1) trains on."""
    try:
        return _KIND_BY_TRAINING_TYPE[training_type]
    except KeyError:
        known = ", ".join(_KIND_BY_TRAINING_TYPE)
        raise ValueError(f"unknown training_type {training_type!r} (expected one of {known})") from None


def _split(name: str) -> tuple[str, str]:
    stem, dot, extension = name.rpartition(".")
    return (stem, dot + extension) if dot and stem else (name, "")


def check_file_name(name: str) -> str | None:
    """Why `name` is not an acceptable Bailian upload name, or None when it is."""
    if "/" in name or "\\" in name:
        return "a file name must not contain a path separator"
    stem, extension = _split(name)
    if not stem:
        return "the file name is empty"
    if len(stem) > MAX_STEM_LENGTH:
        return f"the name without extension is {len(stem)} characters long (at most {MAX_STEM_LENGTH})"
    if not _STEM.fullmatch(stem):
        found = "".join(sorted(set("".join(_NOT_ALLOWED.findall(stem)))))[:20]
        return f"the name without extension may use only ASCII letters, digits, '_' and '-' (found {found!r})"
    if extension and not _EXTENSION.fullmatch(extension):
        return f"the extension {extension!r} must be ASCII letters and digits"
    return None


def safe_file_name(key: str) -> str:
    """A conforming upload name derived from any OSS key, deterministically.

    A key whose base name already conforms keeps it (gaining `.jsonl` if it has no extension). Otherwise
    accents are folded to ASCII, every other run of disallowed characters becomes `_`, and 8 hex digits of
    the key's SHA-256 are appended, so that distinct keys that fold to the same text (`a b.jsonl`,
    `a_b.jsonl`, two Chinese names) stay distinguishable.
    """
    base = key.replace("\\", "/").rsplit("/", 1)[-1]
    stem, extension = _split(base)
    if base and check_file_name(base) is None:
        return base if extension else f"{base}.jsonl"
    if not _EXTENSION.fullmatch(extension):
        extension = ".jsonl"
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    cleaned = _NOT_ALLOWED.sub("_", folded).strip("_-")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    prefix = cleaned[: MAX_STEM_LENGTH - len(digest) - 1] if cleaned else "dataset"
    return f"{prefix}-{digest}{extension}"
