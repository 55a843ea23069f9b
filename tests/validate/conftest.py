"""Fixtures for the validator tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from validate_helpers import CHUNK_SIZES, WriteDataset


@pytest.fixture
def write_dataset(tmp_path: Path) -> WriteDataset:
    """Write lines (already serialised) joined by newlines, with a final newline, to tmp_path/name."""

    def write(lines: Iterable[str], name: str = "train.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path

    return write


@pytest.fixture(params=CHUNK_SIZES, ids=lambda size: f"chunk{size}")
def chunk_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)
