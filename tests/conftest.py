"""Shared fixtures: a real emulator process on loopback, started once per session."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bailian_flow.emulator.process import spawn

TEST_API_KEY = "sk-test-0123456789abcdef"


@dataclass(frozen=True)
class Emulator:
    url: str
    api_key: str
    data_dir: Path

    @property
    def oss_endpoint(self) -> str:
        return self.url

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_emulator/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m bailian_flow.emulator` on a free port and wait for its ready line."""
    return spawn(data_dir, *extra)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    data_dir = tmp_path_factory.mktemp("emulator")
    process, url = start_emulator(data_dir, "--time-scale", "100")
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
