"""Helpers for the validator tests: datasets are real files, fed back in chunks of a chosen size."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from bailian_flow.validate import DatasetKind, DatasetStats, DatasetValidator

CHUNK_SIZES = [1, 7, 64 * 1024]


def line_of(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False)


def chunks_of(path: Path, size: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def feed_file(path: Path, kind: DatasetKind, chunk_size: int, **options: Any) -> DatasetStats:
    validator = DatasetValidator(kind, object_name=path.name, **options)
    for chunk in chunks_of(path, chunk_size):
        validator.feed(chunk)
    return validator.finish()


class WriteDataset(Protocol):
    def __call__(self, lines: Iterable[str], name: str = ...) -> Path: ...
