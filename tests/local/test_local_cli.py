"""The two commands as a user runs them: `bailian-flow dev` until Ctrl-C, `bailian-flow demo` to DONE."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from local_app import write_app

ROOT = Path(__file__).resolve().parents[2]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bailian_flow.cli import main; raise SystemExit(main())", *args]


def _isolated_env(home: Path) -> dict[str, str]:
    """The user's own profile and data directory stay untouched: `dev` writes both."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
    }


def test_dev_prints_its_endpoints_serves_them_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    process = subprocess.Popen(
        _command("dev", "--config", str(config), "--api-token", "tok-cli"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_isolated_env(tmp_path / "home"),
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        text = "".join(lines)
        assert "bailian-flow dev is running" in text
        invoke = re.search(r"invoke endpoint\s+(http://127\.0\.0\.1:\d+)", text)
        http = re.search(r"HTTP trigger\s+(http://127\.0\.0\.1:\d+)", text)
        assert invoke and http and "API token         tok-cli" in text
        request = urllib.request.Request(
            f"{invoke.group(1)}/2023-03-30/functions/fn_echo/invocations", data=b'{"via": "cli"}', method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["echo"] == {"via": "cli"}
        with urllib.request.urlopen(f"{http.group(1)}/hello?q=1", timeout=30) as response:
            assert json.loads(response.read())["event"]["queryParameters"] == {"q": "1"}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_demo_follows_the_sample_run_to_done(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        _command("demo", "--timeout", "60"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_isolated_env(tmp_path / "home"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uploaded" in result.stdout and "datasets/demo/train.jsonl" in result.stdout
    # One line per history entry: elapsed time, sequence number, stage, what changed.
    stages = re.findall(r"^\s+\d+\.\d s\s+#(\d+)\s+(\S+)", result.stdout, flags=re.M)
    assert [int(seq) for seq, _ in stages] == list(range(len(stages))), result.stdout
    names = [stage for _, stage in stages]
    for expected in ("received", "file-ready", "training", "job-succeeded", "deployment-pending", "done"):
        assert expected in names, result.stdout
    assert names[-1] == "done"
    assert re.search(r"deployed model \S+", result.stdout)
    assert time.monotonic() - started < 60


def test_demo_of_a_bad_dataset_says_why_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "not a conversation"}\n')
    result = subprocess.run(
        _command("demo", "--dataset", str(bad), "--timeout", "60"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_isolated_env(tmp_path / "home"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [said] = result.stderr.strip().splitlines()
    assert said.endswith("ended FAILED: datasets/demo/train.jsonl line 1, field messages: missing"), said


def test_dev_starts_the_emulator_in_the_profile_asked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    process = subprocess.Popen(
        _command("dev", "--config", str(config), "--emulator-profile", "strict", "--ephemeral"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_isolated_env(tmp_path / "home"),
    )
    try:
        assert process.stdout is not None
        text = "".join(process.stdout.readline() for _ in range(3))
        emulator = re.search(r"Bailian emulator\s+(http://127\.0\.0\.1:\d+)", text)
        assert emulator, text
        with urllib.request.urlopen(f"{emulator.group(1)}/_emulator/config", timeout=30) as response:
            assert json.loads(response.read())["profile"] == "strict"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
