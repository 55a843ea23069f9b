"""`bailian-flow dev` SIGKILLed again and again while runs are in flight, restarted on the same data directory each
time: every run still ends DONE with exactly one file, one fine-tune and one deployment (issue #17).

"The functions' process" is the `bailian-flow dev` process: it runs the functions, the OSS trigger's poller, the
async queue and the timers. The emulator (Bailian and OSS) is its child process; it follows its parent down (it
stops, saving its state, when the parent's end of its stdin closes) and the next `dev` starts a new one on the same
data directory. The 15 uploads are made right after the first start, before any timer tick, so no run may rely on
the timer's scan of the datasets: every upload's event must survive the kills in the journaled async queue.

Kill moments are drawn from a seeded generator; the loop is bounded (8 kills) and every wait is on a condition with
a generous deadline, so a slow machine makes the test slower, never wrong.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = 15
KILLS = 8
SEED = 17
TERMINAL = ("DONE", "FAILED", "CANCELED")
T = TypeVar("T")


@dataclass
class Dev:
    process: subprocess.Popen[str]
    emulator_url: str
    http_url: str
    bucket: str
    token: str


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bailian_flow.cli import main; raise SystemExit(main())", *args]


def _wait_for(
    what: str, check: Callable[[], T | None], timeout: float, log: Path, seen: Callable[[], object] = lambda: ""
) -> T:
    """Poll `check` until it gives a value; fail naming `what`, what `seen` says and dev's log after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log.exists() else ""
            pytest.fail(f"{what}: not within {timeout:g} s\n{seen()}\n--- dev's log, last lines ---\n{tail}")
        time.sleep(0.1)


def _get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/_emulator/state", timeout=5).close()
    except (urllib.error.URLError, OSError):
        return False
    return True


def _start(config: Path, data_dir: Path, env: dict[str, str], log: IO[str], log_path: Path) -> Dev:
    process = subprocess.Popen(
        _command(
            "dev",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--time-scale",
            "200",
            "--timer-interval",
            "0.5",
            "-v",
        ),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read(stream: IO[str]) -> None:  # keeps dev's stdout drained for as long as it lives
        for line in stream:
            lines.put(line)

    assert process.stdout is not None
    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    said: list[str] = []

    def described() -> Dev | None:
        while not lines.empty():
            said.append(lines.get())
        text = "".join(said)
        assert process.poll() is None, f"dev exited ({process.returncode}): {text}"
        emulator = re.search(r"Bailian emulator\s+(http://\S+)", text)
        oss = re.search(r"OSS endpoint\s+\S+\s+bucket (\S+)", text)
        http = re.search(r"HTTP trigger\s+(http://\S+)", text)
        token = re.search(r"API token\s+(\S+)", text)
        if not (emulator and oss and http and token):
            return None
        return Dev(process, emulator.group(1), http.group(1), oss.group(1), token.group(1))

    return _wait_for("dev ready", described, 90, log_path)


def _kill(dev: Dev, log_path: Path) -> None:
    dev.process.send_signal(signal.SIGKILL)
    dev.process.wait(timeout=30)
    # Its emulator follows it down, or the next dev could not have the data directory: no orphan left running.
    _wait_for("the killed dev's emulator stops", lambda: True if not _answers(dev.emulator_url) else None, 60, log_path)


@contextmanager
def _cleanup(devs: list[Dev]) -> Iterator[None]:
    try:
        yield
    finally:
        for dev in devs:
            if dev.process.poll() is None:
                dev.process.kill()
                dev.process.wait()


def _runs(dev: Dev) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = _get_json(f"{dev.http_url}/runs?limit=100", dev.token)["runs"]
    return runs


def _progress(dev: Dev) -> list[tuple[str, str]]:
    return sorted((run["run_id"], run["stage"]) for run in _runs(dev))


def _moved(dev: Dev, before: list[tuple[str, str]]) -> bool | None:
    now = _progress(dev)
    everything_ended = len(now) >= RUNS and all(stage in TERMINAL for _, stage in now)
    return True if now != before or everything_ended else None


def _put(dev: Dev, key: str, body: bytes) -> None:
    request = urllib.request.Request(f"{dev.emulator_url}/{dev.bucket}/{key}", data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_dev_killed_eight_times_while_runs_are_in_flight_ends_every_run_done_with_one_of_each(
    tmp_path: Path,
) -> None:
    sample = (ROOT / "samples" / "sft" / "train.jsonl").read_bytes()
    data_dir, log_path = tmp_path / "data", tmp_path / "dev.log"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    }
    rng = random.Random(SEED)
    keys = [f"datasets/kill/run-{n:02d}/train.jsonl" for n in range(RUNS)]
    devs: list[Dev] = []
    with log_path.open("w") as log, _cleanup(devs):
        devs.append(_start(ROOT / "s.yaml", data_dir, env, log, log_path))
        for key in keys:
            _put(devs[-1], key, sample)

        for kill in range(KILLS):
            dev = devs[-1]
            if kill:
                # Each dev gets some work done before it dies (so the kills spread over the runs' stages rather
                # than hit idle restarts), then dies at a moment drawn from the seed: mid-step, mid-commit, idle.
                before = _progress(dev)
                _wait_for("progress since the restart", functools.partial(_moved, dev, before), 90, log_path)
            # The first kill comes right after the uploads: their events are unread or queued, none finished.
            time.sleep(rng.uniform(0.0, 0.8))
            _kill(dev, log_path)
            devs.append(_start(ROOT / "s.yaml", data_dir, env, log, log_path))

        dev = devs[-1]

        def all_ended() -> list[dict[str, Any]] | None:
            runs = [run for run in _runs(dev) if run["source"].get("key") in keys]
            return runs if len(runs) >= RUNS and all(run["stage"] in TERMINAL for run in runs) else None

        def stages() -> list[tuple[str, str]]:
            return sorted((run["source"].get("key", ""), run["stage"]) for run in _runs(dev))

        runs = _wait_for("every run ends", all_ended, 120, log_path, stages)
        assert sorted(run["source"]["key"] for run in runs) == keys, "one run per upload"
        assert [run["stage"] for run in runs] == ["DONE"] * RUNS, [(r["run_id"], r["stage"]) for r in runs]
        created = _get_json(f"{dev.emulator_url}/_emulator/state")["created"]
        assert (created["files"], created["fine_tunes"], created["deployments"]) == (RUNS, RUNS, RUNS), created

        dev.process.send_signal(signal.SIGINT)
        assert dev.process.wait(timeout=60) == 0
