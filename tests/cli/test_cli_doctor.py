"""`bailian-flow doctor` run as a user runs it (a subprocess) against the emulator, in its default and strict
profiles: under the documented defaults every assumption holds; under the strict reading doctor names each
violated row. The probes' interleavings are held by scripted slow batches, never by timing."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cli_support import ROOT, SAMPLE, cli_command, isolated_env
from emulator_support import Emulator, start_emulator

from bailian_flow.client import BailianClient

# The test batches outlast the doctor's creates: the third create meets two running ones whatever the machine's
# speed (300 emulated seconds are 3 s at the fixture's time scale of 100).
SLOW_BATCHES = {"kind": "batch", "outcome": "SLOW:300", "count": 3}


def _doctor(emulator: Emulator, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    settings = {"DASHSCOPE_API_KEY": emulator.api_key, "DASHSCOPE_BASE_URL": emulator.url, **env}
    return subprocess.run(
        cli_command("doctor", *args),
        env=isolated_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )


def _rows(done: subprocess.CompletedProcess[str]) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    for check in json.loads(done.stdout)["checks"]:
        rows.setdefault(check["row"], []).append(check)
    return rows


def _statuses(rows: dict[str, list[dict[str, str]]], row: str) -> set[str]:
    return {check["status"] for check in rows[row]}


def _post(emulator: Emulator, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{emulator.url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _pipeline_job(emulator: Emulator) -> str:
    """A fine-tune made the way the pipeline makes one: its file described, its job named bf-<run>-<attempt>."""

    async def make() -> str:
        async with BailianClient(api_key=emulator.api_key, base_url=emulator.url) as client:
            uploaded = await client.files.upload(
                SAMPLE, description="bailian-flow run=r1 attempt=1 role=train", filename="train.jsonl"
            )
            job = await client.fine_tunes.create("qwen3-8b", training_file_ids=[uploaded.file_id], job_name="bf-r1-1")
            return job.job_id

    return asyncio.run(make())


def _left_by_probes(emulator: Emulator) -> list[str]:
    """Files the probes made that still exist, and test batches still running."""

    async def look() -> list[str]:
        async with BailianClient(api_key=emulator.api_key, base_url=emulator.url) as client:
            left = [info.file_id async for info in client.files.list() if (info.name or "").startswith("bf-doctor")]
            left += [
                item.id async for item in client.compat_files.list() if (item.filename or "").startswith("bf-doctor")
            ]
            left += [item.id async for item in client.compat_files.list(purpose="batch_output")]
            left += [batch.id async for batch in client.batches.list() if not batch.is_terminal]
            return left

    return asyncio.run(look())


def test_default_profile_every_assumption_holds(emulator_reset: Emulator, tmp_path: Path) -> None:
    _pipeline_job(emulator_reset)
    _post(emulator_reset, "/_emulator/script", SLOW_BATCHES)
    done = _doctor(emulator_reset, tmp_path, "--probe", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done)
    violated = [check for checks in rows.values() for check in checks if check["status"] == "violated"]
    assert violated == []
    for row in ("C2", "C13", "C17", "C18", "C20", "C24", "C31", "C32", "C34", "C36", "C37", "C41", "probe"):
        assert _statuses(rows, row) == {"holds"}, rows[row]
    assert "bf-r1-1" in rows["C2"][0]["evidence"]
    assert "LimitExceeded.BatchTasks" in rows["C36"][-1]["evidence"]
    assert _left_by_probes(emulator_reset) == []


def test_strict_profile_reports_the_violated_assumptions(emulator_reset: Emulator, tmp_path: Path) -> None:
    # A lag far beyond the first look (300 emulated s = 3 s here), so "not listed at once" is not a matter of speed.
    _post(emulator_reset, "/_emulator/config", {"profile": "strict", "list_lag_seconds": 300})
    job_id = _pipeline_job(emulator_reset)
    _post(emulator_reset, "/_emulator/clock", {"advance": 301})  # the job is old enough to be listed
    _post(emulator_reset, "/_emulator/script", SLOW_BATCHES)
    done = _doctor(emulator_reset, tmp_path, "--probe", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done)
    assert _statuses(rows, "C2") == {"violated"} and job_id in rows["C2"][0]["evidence"]
    assert _statuses(rows, "C24") == {"violated"} and "page_size 200 capped" in rows["C24"][0]["evidence"]
    assert _statuses(rows, "C18") >= {"violated"}
    assert _statuses(rows, "C41") == {"violated"}
    # What strict leaves documented still holds, and the probes still clean up after themselves.
    for row in ("C13", "C17", "C20", "C31", "C32", "C36", "C37", "probe"):
        assert _statuses(rows, row) == {"holds"}, rows[row]
    assert _left_by_probes(emulator_reset) == []


def test_read_only_by_default_and_plain_text_when_piped(emulator_reset: Emulator, tmp_path: Path) -> None:
    done = _doctor(emulator_reset, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("bailian-flow doctor: region cn") and "read-only" in lines[0]
    assert "\x1b[" not in done.stdout
    assert any(line.startswith("C41") and "unknown" in line and "--probe" in line for line in lines)
    assert lines[-1].endswith("(rows: docs/service-contract.md)")
    with urllib.request.urlopen(f"{emulator_reset.url}/_emulator/state", timeout=10) as response:
        created = json.loads(response.read())["created"]
    assert not any(created.values()), created  # read-only: nothing was made


def test_a_region_without_fine_tuning_is_violated(emulator_reset: Emulator, tmp_path: Path) -> None:
    _post(emulator_reset, "/_emulator/config", {"region": "intl"})
    done = _doctor(emulator_reset, tmp_path, "--json", DASHSCOPE_REGION="intl")
    assert done.returncode == 1, done.stderr
    rows = _rows(done)
    assert _statuses(rows, "C13") == {"violated"} and "China (Beijing) only" in rows["C13"][0]["evidence"]
    assert _statuses(rows, "C27") == {"violated"}  # lora deployments: Beijing only


def test_a_failing_probe_step_still_undoes_what_it_made(emulator_reset: Emulator, tmp_path: Path) -> None:
    _post(emulator_reset, "/_emulator/script", SLOW_BATCHES)
    emulator_reset.add_faults(
        {"method": "GET", "path": "/compatible-mode/v1/files/*/content", "status": 500, "code": "InternalError"}
    )
    done = _doctor(emulator_reset, tmp_path, "--probe", "--json")
    assert done.returncode == 1, done.stderr
    rows = _rows(done)
    assert _statuses(rows, "C37") == {"violated"} and "unreadable" in rows["C37"][0]["evidence"]
    assert _statuses(rows, "probe") == {"holds"}
    assert _left_by_probes(emulator_reset) == []


def test_a_refused_batch_create_still_deletes_the_input(emulator_reset: Emulator, tmp_path: Path) -> None:
    emulator_reset.add_faults({"method": "POST", "path": "/compatible-mode/v1/batches", "status": 400, "times": 1})
    done = _doctor(emulator_reset, tmp_path, "--probe", "--json")
    assert done.returncode == 1, done.stderr
    rows = _rows(done)
    assert _statuses(rows, "C32") == {"violated"} and _statuses(rows, "probe") == {"holds"}
    assert _left_by_probes(emulator_reset) == []


def test_the_key_never_shows(emulator_reset: Emulator, tmp_path: Path) -> None:
    key = emulator_reset.api_key
    # A service that echoes the key back in an error message.
    emulator_reset.add_faults({"path": "/api/v1/deployments", "status": 500, "message": f"bad key {key}"})
    for args in (("--json",), ()):
        done = _doctor(emulator_reset, tmp_path, *args)
        assert "**********" in done.stdout
        assert key not in done.stdout + done.stderr


def test_a_missing_key_says_what_to_set(tmp_path: Path) -> None:
    done = subprocess.run(cli_command("doctor"), env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1 and "DASHSCOPE_API_KEY is not set" in done.stderr


def test_an_unreachable_host_exits_4(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = isolated_env(tmp_path, DASHSCOPE_API_KEY="sk-x", DASHSCOPE_BASE_URL=f"http://127.0.0.1:{port}")
    done = subprocess.run(cli_command("doctor"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    assert "cannot reach" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_refused_key_says_the_key_is_refused(tmp_path: Path) -> None:
    process, url = start_emulator(tmp_path / "data", "--api-key", "sk-the-right-one")
    try:
        wrong = "sk-the-wrong-one"
        env = isolated_env(tmp_path, DASHSCOPE_API_KEY=wrong, DASHSCOPE_BASE_URL=url)
        done = subprocess.run(cli_command("doctor", "--probe"), env=env, capture_output=True, text=True, timeout=60)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert done.returncode == 4
    assert "the key is refused" in done.stderr and "InvalidApiKey" in done.stderr
    assert wrong not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("setting", "row"),
    [("on_success.plan=ptu", "C22"), ("on_success.action=import", "C30"), ("model=wan2.2-i2v-flash", "C45")],
)
def test_the_settings_decide_which_region_rows_are_checked(
    emulator_reset: Emulator, tmp_path: Path, setting: str, row: str
) -> None:
    done = _doctor(emulator_reset, tmp_path, "--json", "--set", setting)
    rows = _rows(done)
    assert row in rows, done.stdout
    assert _statuses(rows, row) == ({"violated"} if row == "C22" else {"holds"})


def test_a_workspace_is_checked_against_what_the_items_echo(emulator_reset: Emulator, tmp_path: Path) -> None:
    async def make() -> None:
        async with BailianClient(
            api_key=emulator_reset.api_key, base_url=emulator_reset.url, workspace="ws-a"
        ) as client:
            uploaded = await client.files.upload(SAMPLE, filename="train.jsonl")
            await client.fine_tunes.create("qwen3-8b", training_file_ids=[uploaded.file_id])

    asyncio.run(make())
    same = _rows(_doctor(emulator_reset, tmp_path, "--json", DASHSCOPE_WORKSPACE="ws-a"))
    other = _rows(_doctor(emulator_reset, tmp_path, "--json", DASHSCOPE_WORKSPACE="ws-b"))
    assert {check["status"] for check in same["C40"]} == {"holds"}
    workspace = [check for check in other["C40"] if check["assumption"] == "workspace"]
    assert workspace[0]["status"] == "violated" and "ws-a" in workspace[0]["evidence"]


def test_quotas_against_the_settings_and_a_full_file_quota(emulator_reset: Emulator, tmp_path: Path) -> None:
    _pipeline_job(emulator_reset)

    async def one_more_file() -> None:
        async with BailianClient(api_key=emulator_reset.api_key, base_url=emulator_reset.url) as client:
            await client.files.upload(SAMPLE, filename="other.jsonl")

    asyncio.run(one_more_file())
    _post(emulator_reset, "/_emulator/config", {"quotas": {"files": 2}})  # the account's two files fill it
    _post(emulator_reset, "/_emulator/script", SLOW_BATCHES)
    quotas = {"BAILIAN_FLOW_QUOTA_FILES": "1", "BAILIAN_FLOW_QUOTA_FINE_TUNE_JOBS": "1"}
    done = _doctor(emulator_reset, tmp_path, "--probe", "--json", **quotas)
    assert done.returncode == 1, done.stderr
    rows = _rows(done)
    assert _statuses(rows, "C10") == {"holds"} and "1 of 1 jobs" in rows["C10"][0]["evidence"]
    assert "full" in rows["C10"][0]["evidence"]
    # More files than the setting assumes: the account's real quota is larger than the pipeline believes.
    assert _statuses(rows, "C15") == {"violated"} and "BAILIAN_FLOW_QUOTA_FILES" in rows["C15"][0]["evidence"]
    # The probe's upload is answered 200 with failed_uploads, read as a full quota; the batch probe still runs.
    assert _statuses(rows, "C16") == {"holds"} and "Out of number" in rows["C16"][0]["evidence"]
    assert "C17" not in rows and _statuses(rows, "C37") == {"holds"}


def test_a_host_that_is_not_bailian_exits_4(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>a web page</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = isolated_env(tmp_path, DASHSCOPE_API_KEY="sk-x", DASHSCOPE_BASE_URL=url)
        done = subprocess.run(cli_command("doctor"), env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 4, done.stderr
    assert "DASHSCOPE_BASE_URL" in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_a_terminal_gets_a_table(emulator_reset: Emulator, tmp_path: Path) -> None:
    import os
    import pty

    master, terminal = pty.openpty()
    env = isolated_env(
        tmp_path, DASHSCOPE_API_KEY=emulator_reset.api_key, DASHSCOPE_BASE_URL=emulator_reset.url, COLUMNS="200"
    )
    process = subprocess.Popen(cli_command("doctor"), env=env, stdout=terminal, stderr=subprocess.PIPE, cwd=ROOT)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert process.wait(timeout=60) == 0
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    header = next(line for line in text.splitlines() if "assumption" in line)
    assert all(word in header for word in ("row", "status", "evidence"))
    assert "C40" in text and "holds" in text and "(rows: docs/service-contract.md)" in text
