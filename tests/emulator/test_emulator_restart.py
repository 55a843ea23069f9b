"""An emulator restarted on the same `--data-dir` still has its jobs, files and deployments, at the same point of
their lifecycle, and goes on counting from where it stopped."""

from __future__ import annotations

import json
import signal
import stat
import urllib.request
from pathlib import Path
from typing import Any

from emulator_support import TEST_API_KEY, start_emulator

from bailian_flow.client import BailianClient


def _stop(process: Any) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def _advance(url: str, seconds: float) -> None:
    request = urllib.request.Request(
        f"{url}/_emulator/clock", data=json.dumps({"advance": seconds}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


def _state(url: str) -> dict[str, dict[str, int]]:
    with urllib.request.urlopen(f"{url}/_emulator/state", timeout=10) as response:
        state: dict[str, dict[str, int]] = json.loads(response.read())
    return state


async def test_jobs_files_and_clock_survive_a_restart(tmp_path: Path) -> None:
    data = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    process, url = start_emulator(tmp_path)
    try:
        async with BailianClient(api_key=TEST_API_KEY, base_url=url) as client:
            uploaded = await client.files.upload(data, purpose="fine-tune", filename="train.jsonl")
            job = await client.fine_tunes.create(
                model="qwen3-8b", training_file_ids=[uploaded.file_id], job_name="persist-me"
            )
            _advance(url, 12)
            assert (await client.fine_tunes.get(job.job_id)).status == "RUNNING"
    finally:
        _stop(process)
    saved = tmp_path / "registries.pickle"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    process, url = start_emulator(tmp_path)
    try:
        async with BailianClient(api_key=TEST_API_KEY, base_url=url) as client:
            again = await client.fine_tunes.get(job.job_id)
            assert again.status == "RUNNING" and again.job_name == "persist-me"
            assert (await client.files.get(uploaded.file_id)).name == "train.jsonl"
            created = _state(url)["created"]
            assert created["fine_tunes"] == 1 and created["files"] == 1
            # The lifecycle goes on from where it was.
            _advance(url, 120)
            assert (await client.fine_tunes.get(job.job_id)).status == "SUCCEEDED"
            second = await client.fine_tunes.create(model="qwen3-8b", training_file_ids=[uploaded.file_id])
            assert second.job_id != job.job_id
            assert _state(url)["created"]["fine_tunes"] == 2
    finally:
        _stop(process)
