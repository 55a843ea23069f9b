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

    def add_faults(self, *rules: dict[str, object]) -> None:
        """`POST /_emulator/faults`: fail, delay or drop the requests each rule matches."""
        data = json.dumps({"rules": list(rules)}).encode()
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(f"{self.url}/_emulator/faults", method="POST", data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def clear_faults(self) -> None:
        request = urllib.request.Request(f"{self.url}/_emulator/faults", method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def fault_hits(self) -> list[int]:
        """How often each rule fired, in the order the rules were added."""
        with urllib.request.urlopen(f"{self.url}/_emulator/faults", timeout=10) as response:
            return [int(rule["hits"]) for rule in json.loads(response.read())["rules"]]


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m bailian_flow.emulator` on a free port and wait for its ready line."""
    return spawn(data_dir, *extra)
