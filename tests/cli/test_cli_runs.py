"""The CLI as a user runs it: `dev` in one process, `put` and `runs ...` in others, all through the profile."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import SAMPLE, DevStack, cli_command, isolated_env, start_dev

INVALID = (
    b'{"messages": [{"role": "user", "content": "hi"}]}\n'
    b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    home = tmp_path_factory.mktemp("home")
    stack = start_dev(isolated_env(home, BAILIAN_FLOW_API_TOKEN="tok-from-env"))
    try:
        yield stack
    finally:
        assert stack.stop() == 0
        assert not (home / "config" / "bailian-flow" / "profile.json").exists(), "dev removes its profile on exit"


def _wait_stage(dev: DevStack, run_id: str, stages: set[str], timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        run = dev.cli_json("runs", "show", run_id)["run"]
        if run["stage"] in stages or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.2)


def test_dev_reads_the_token_from_the_environment_and_writes_a_private_profile(dev: DevStack) -> None:
    assert "API token         tok-from-env" in dev.banner
    assert "kept across restarts" in dev.banner
    profile = Path(dev.env["XDG_CONFIG_HOME"]) / "bailian-flow" / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    saved = json.loads(profile.read_text())
    assert saved["api_token"] == "tok-from-env" and saved["api_url"] == dev.urls["api"]


def test_put_starts_a_run_that_watch_follows_to_done(dev: DevStack) -> None:
    key = "datasets/cli/train.jsonl"
    put = dev.cli("put", str(SAMPLE), "--key", key, "--set", "model=qwen3-14b", "--set", "hyper_parameters.n_epochs=2")
    assert put.returncode == 0, put.stderr
    run_id = put.stdout.strip()
    assert "settings → oss://bailian-flow/datasets/cli/train.jsonl.flow.yaml" in put.stderr
    with dev.hurried():
        watched = dev.cli("runs", "watch", run_id, "--interval", "0.2", "--timeout", "60")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    stages = [line.split()[2] for line in watched.stdout.splitlines() if "#" in line]
    assert stages[0] == "received" and stages[-1] == "done" and "training" in stages
    assert "deployed model" in watched.stdout

    detail = dev.cli_json("runs", "show", run_id)
    assert detail["run"]["stage"] == "DONE"
    assert detail["run"]["settings"]["model"] == "qwen3-14b"
    assert detail["run"]["settings"]["hyper_parameters"]["n_epochs"] == 2
    shown = dev.cli("runs", "show", run_id)
    assert shown.returncode == 0 and "timeline" in shown.stdout and detail["run"]["deployed_model"] in shown.stdout
    assert "tokens × 2 epoch(s) ≈" in shown.stdout and "USD" in shown.stdout
    assert f"usage     {detail['run']['usage']['tokens']:,} tokens" in shown.stdout
    listed = dev.cli_json("runs", "list", "--stage", "DONE")["runs"]
    assert run_id in [run["run_id"] for run in listed]
    table = dev.cli("runs", "list").stdout
    assert run_id in table and "DONE" in table
    # Every registered kind is a filter the API takes, not only the first three.
    assert run_id in [run["run_id"] for run in dev.cli_json("runs", "list", "--kind", "fine-tune")["runs"]]
    for kind in ("deploy", "media-fine-tune"):
        assert dev.cli_json("runs", "list", "--kind", kind)["runs"] == [], kind


def test_a_failed_run_shows_object_line_and_field(dev: DevStack, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(INVALID)
    put = dev.cli("put", str(path), "--key", "datasets/cli/bad.jsonl")
    assert put.returncode == 0, put.stderr
    run_id = put.stdout.strip()
    watched = dev.cli("runs", "watch", run_id, "--interval", "0.2", "--timeout", "30")
    assert watched.returncode == 1
    assert "datasets/cli/bad.jsonl line 1, field messages[0].role" in watched.stdout
    failed = dev.cli_json("runs", "list", "--stage", "FAILED")["runs"]
    [run] = [run for run in failed if run["run_id"] == run_id]
    assert run["error"]["line"] == 1 and run["error"]["field"] == "messages[0].role"
    assert "line 1" in dev.cli("runs", "list", "--stage", "FAILED").stdout


def test_cancel_stops_a_training_run_once(dev: DevStack) -> None:
    put = dev.cli("put", str(SAMPLE), "--key", "datasets/cli/cancel.jsonl")
    run_id = put.stdout.strip()
    assert _wait_stage(dev, run_id, {"training"})["stage"] == "training"
    canceled = dev.cli("runs", "cancel", run_id)
    assert canceled.returncode == 0, canceled.stderr
    assert "CANCELED" in canceled.stdout
    again = dev.cli("runs", "cancel", run_id)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already CANCELED" in again.stderr


@pytest.mark.parametrize("command", [["show"], ["cancel"], ["retry"], ["teardown"]])
def test_an_unknown_run_exits_3_with_one_line(dev: DevStack, command: list[str]) -> None:
    done = dev.cli("runs", *command, "r0000000000000000")
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("bailian-flow: ") and done.stderr.count("\n") == 1


def test_unreachable_or_unconfigured_api_exits_4_with_one_line(tmp_path: Path) -> None:
    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        env = isolated_env(tmp_path, **extra)
        return subprocess.run(cli_command("runs", "list"), env=env, capture_output=True, text=True, check=False)

    nothing = run()
    assert nothing.returncode == 4 and "bailian-flow dev" in nothing.stderr
    closed = run(BAILIAN_FLOW_API_URL="http://127.0.0.1:9", BAILIAN_FLOW_API_TOKEN="t")
    assert closed.returncode == 4 and "cannot reach the API" in closed.stderr
    schemeless = run(BAILIAN_FLOW_API_URL="127.0.0.1:9", BAILIAN_FLOW_API_TOKEN="t")
    assert schemeless.returncode == 4 and "http://" in schemeless.stderr
    for result in (nothing, closed, schemeless):
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_wrong_token_exits_4(dev: DevStack) -> None:
    done = dev.cli("runs", "list", BAILIAN_FLOW_API_TOKEN="wrong")
    assert done.returncode == 4 and "BAILIAN_FLOW_API_TOKEN" in done.stderr


def test_no_traceback_reached_the_dev_console(dev: DevStack) -> None:
    assert not [line for line in dev.errors if "Traceback" in line], "".join(dev.errors)
