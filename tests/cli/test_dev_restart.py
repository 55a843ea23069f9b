"""`bailian-flow dev` stopped mid-run and started again on the same data directory: the run carries on to DONE,
with one fine-tune and one deployment on the (emulated) Bailian side."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from cli_support import SAMPLE, DevStack, isolated_env, start_dev


def _emulator_state(dev: DevStack) -> dict[str, dict[str, int]]:
    with urllib.request.urlopen(f"{dev.urls['emulator']}/_emulator/state", timeout=10) as response:
        state: dict[str, dict[str, int]] = json.loads(response.read())
    return state


def _stage(dev: DevStack, run_id: str) -> str:
    return str(dev.cli_json("runs", "show", run_id)["run"]["stage"])


def test_a_restarted_dev_carries_a_training_run_to_done_without_duplicates(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    first = start_dev(env)
    try:
        put = first.cli("put", str(SAMPLE), "--key", "datasets/restart/train.jsonl")
        assert put.returncode == 0, put.stderr
        run_id = put.stdout.strip()
        deadline = time.monotonic() + 30
        while _stage(first, run_id) != "training" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _stage(first, run_id) == "training"
        token = first.banner.split("API token")[1].split()[0]
    finally:
        assert first.stop() == 0

    second = start_dev(env)
    try:
        assert f"API token         {token}" in second.banner, "the token survives the restart"
        assert _emulator_state(second)["live"]["fine_tunes"] == 1
        with second.hurried():
            watched = second.cli("runs", "watch", run_id, "--interval", "0.2", "--timeout", "90")
        assert watched.returncode == 0, watched.stdout + watched.stderr
        created = _emulator_state(second)["created"]
        assert created["fine_tunes"] == 1 and created["deployments"] == 1, created
        history = second.cli_json("runs", "show", run_id)["history"]
        assert [entry["stage"] for entry in history].count("starting-job") == 1
        runs = second.cli_json("runs", "list")["runs"]
        assert [run["run_id"] for run in runs] == [run_id]
        assert not [line for line in first.errors + second.errors if "Traceback" in line]
    finally:
        assert second.stop() == 0
