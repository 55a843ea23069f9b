"""`bailian-flow dev` as a user starts it, and the CLI run against it as a subprocess (no shared state)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sft" / "train.jsonl"


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bailian_flow.cli import main; raise SystemExit(main())", *args]


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The user's environment minus anything that would point the CLI elsewhere, with a private profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAILIAN_FLOW_", "DASHSCOPE_", "ALIBABA_CLOUD_"))}
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class DevStack:
    process: subprocess.Popen[str]
    env: dict[str, str]
    banner: str
    urls: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 90, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_command(*args),
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def advance_clock(self, seconds: float) -> None:
        request = urllib.request.Request(
            f"{self.urls['emulator']}/_emulator/clock",
            data=json.dumps({"advance": seconds}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    @contextlib.contextmanager
    def hurried(self, step: float = 30.0, every: float = 0.2) -> Iterator[None]:
        """Move Bailian's clock forward in the background: jobs finish in seconds, on demand."""
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(every):
                with contextlib.suppress(OSError):
                    self.advance_clock(step)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_dev(env: dict[str, str], *args: str) -> DevStack:
    process = subprocess.Popen(
        cli_command("dev", "--timer-interval", "0.5", *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("function webhook"):
            break
    banner = "".join(lines)
    if "bailian-flow dev is running" not in banner:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"dev did not start: {banner}{err}")
    urls = {}
    for line in lines:
        words = line.split()
        if line.strip().startswith("Bailian emulator"):
            urls["emulator"] = words[2]
        if line.strip().startswith("HTTP trigger"):
            urls["api"] = words[2]
    stack = DevStack(process, env, banner, urls)
    # Keep draining its output so that a chatty stack never blocks on a full pipe; keep stderr to check it.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    threading.Thread(target=_collect, args=(process, stack.errors), daemon=True).start()
    return stack


def _collect(process: subprocess.Popen[str], into: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        into.append(line)
