"""Shared fixtures: a real emulator process on loopback, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from emulator_support import TEST_API_KEY, Emulator, start_emulator

# `BAILIAN_FLOW_EMULATOR_PROFILE=strict` starts the emulator in its strictest reading of every undocumented behaviour
# (docs/service-contract.md); each reset restores the profile it was started with. `make test` runs the
# interleavings, schedules, exactly-once and storm tests a second time this way.
EMULATOR_PROFILE = os.environ.get("BAILIAN_FLOW_EMULATOR_PROFILE", "default")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    data_dir = tmp_path_factory.mktemp("emulator")
    process, url = start_emulator(data_dir, "--time-scale", "100", "--profile", EMULATOR_PROFILE)
    try:
        yield Emulator(url=url, api_key=TEST_API_KEY, data_dir=data_dir)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def emulator_reset(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


@pytest.fixture
def bailian_env(emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Point every client at the emulator through the documented environment variables."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", emulator_reset.api_key)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator_reset.url)
    return emulator_reset


@pytest.fixture
def pipeline(emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real FC functions wired to the emulator (tests/pipeline/harness.py)."""
    # tests/pipeline is on sys.path once one of its modules is collected (pytest's prepend import mode).
    from harness import Pipeline

    return Pipeline(emulator_reset.url, monkeypatch)
