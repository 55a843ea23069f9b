"""The batch tests' own fixture."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Pipeline


@pytest.fixture
def batch_pipeline(emulator_reset: Any, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    # Tiny shards, so that a few dozen lines make several batches.
    return Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_BATCH_SHARD_LINES="40")
