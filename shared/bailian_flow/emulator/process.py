"""Start the emulator in a child process and wait for its ready line (tests and benchmarks share this)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

READY = "bailian-flow emulator ready "


def spawn(
    data_dir: Path,
    *extra: str,
    host: str = "127.0.0.1",
    stderr: int | IO[Any] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """`python -m bailian_flow.emulator` on a free port; returns the process and its base URL once it is ready."""
    command: Sequence[str] = [
        sys.executable,
        "-m",
        "bailian_flow.emulator",
        "--host",
        host,
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(READY):
        process.kill()
        process.wait()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return process, line.strip().removeprefix(READY)
