"""What tests need to talk to an emulator process; importable from any test folder (pytest `pythonpath`)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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

    def configure(self, settings: dict[str, object]) -> None:
        """`POST /_emulator/config` (quotas, import spelling); a reset restores the defaults."""
        data = json.dumps(settings).encode()
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(f"{self.url}/_emulator/config", method="POST", data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m bailian_flow.emulator` on a free port and wait for its ready line."""
    return spawn(data_dir, *extra)
