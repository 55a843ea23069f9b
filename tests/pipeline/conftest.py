from __future__ import annotations

import pytest
from harness import Pipeline


@pytest.fixture
def pipeline(emulator_reset, monkeypatch: pytest.MonkeyPatch) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(emulator_reset.url, monkeypatch)
