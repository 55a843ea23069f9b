"""An emulator restarted on the same `--data-dir` still has its jobs, files and deployments, at the same point of
their lifecycle, and goes on counting from where it stopped."""

from __future__ import annotations

import json
import pickle
import signal
import stat
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from emulator_support import TEST_API_KEY, start_emulator

from bailian_flow.client import BailianClient
from bailian_flow.emulator.process import spawn


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
    process, url = start_emulator(tmp_path, "--profile", "default")
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
    saved = tmp_path / "registries.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_bytes())["format"] == 3

    process, url = start_emulator(tmp_path, "--profile", "default")
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


def _batch_input(count: int) -> bytes:
    line = {
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": "q"}]},
    }
    return b"".join(json.dumps({"custom_id": f"c{n}", **line}).encode() + b"\n" for n in range(count))


async def test_every_registry_reads_the_same_after_a_restart(tmp_path: Path) -> None:
    process, url = start_emulator(tmp_path, "--profile", "default")
    try:
        async with BailianClient(api_key=TEST_API_KEY, base_url=url) as client:
            deployment = await client.deployments.create("qwen3-14b", capacity=1, suffix="keep")
            storage = {"bucket_name": "weights", "object_key": "models/x/"}
            imported = await client.custom_models.create("qwen3-32b", storage, weight_type="lora")
            uploaded = await client.compat_files.upload(_batch_input(3), purpose="batch", filename="in.jsonl")
            batch = await client.batches.create(uploaded.id, "/v1/chat/completions", metadata={"ds_name": "keep"})
            response = await client.responses.create("qwen-plus", [{"role": "user", "content": "hello"}])
            _advance(url, 60)
            done = await client.batches.get(batch.id)
            assert done.status == "completed" and done.output_file_id
            output = b"".join([chunk async for chunk in client.compat_files.content(done.output_file_id)])
            before = (
                await client.deployments.get(deployment.deployed_model),
                await client.custom_models.get(imported.job_id),
                await client.compat_files.get(uploaded.id),
                done,
                (await client.responses.get(response.id)).id,
            )
            state = _state(url)
    finally:
        _stop(process)

    process, url = start_emulator(tmp_path, "--profile", "default")
    try:
        async with BailianClient(api_key=TEST_API_KEY, base_url=url) as client:
            after = (
                await client.deployments.get(deployment.deployed_model),
                await client.custom_models.get(imported.job_id),
                await client.compat_files.get(uploaded.id),
                await client.batches.get(batch.id),
                (await client.responses.get(response.id)).id,
            )
            assert after == before
            assert b"".join([chunk async for chunk in client.compat_files.content(done.output_file_id)]) == output
            assert _state(url) == state
    finally:
        _stop(process)


class _Trap:
    """A pickle that runs a command when loaded: what a stranger could leave in a data directory."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def _start_and_stop(data_dir: Path) -> tuple[dict[str, dict[str, int]], str]:
    """Start an emulator on `data_dir`, read its state, stop it; what it said on stderr."""
    process, url = spawn(data_dir, stderr=subprocess.PIPE)
    try:
        state = _state(url)
    finally:
        _stop(process)
    assert process.stderr is not None
    return state, process.stderr.read()


def test_an_old_pickle_is_never_loaded_and_says_so_in_one_line(tmp_path: Path) -> None:
    data_dir, marker = tmp_path / "data", tmp_path / "pwned"
    data_dir.mkdir()
    (data_dir / "registries.pickle").write_bytes(pickle.dumps({"format": 1, "registries": _Trap(marker)}))

    state, said = _start_and_stop(data_dir)

    assert not marker.exists(), "the pickle was loaded"
    assert set(state["created"].values()) == {0}
    lines = said.strip().splitlines()
    assert len(lines) == 1 and "registries.pickle" in lines[0] and "starting empty" in lines[0], said
    assert json.loads((data_dir / "registries.json").read_bytes())["format"] == 3, "the new format from now on"


def test_a_state_file_it_cannot_trust_gives_one_line_and_a_fresh_start(tmp_path: Path) -> None:
    saved = {"format": 3, "clock": 10.0, "created": {"files": 1}, "registries": {}}
    outside = {
        "f1": {
            "id": "f1",
            "bytes": 3,
            "created_at": 1,
            "filename": "x.jsonl",
            "purpose": "batch",
            "path": "/etc/passwd",
        }
    }
    cases = {
        "not json": b"\x80\x04 not json",
        "another format": json.dumps({**saved, "format": 99}).encode(),
        "a wrong field": json.dumps({**saved, "clock": "soon"}).encode(),
        "a record outside the data directory": json.dumps({**saved, "registries": {"compat_files": outside}}).encode(),
    }
    for case, content in cases.items():
        data_dir = tmp_path / case.replace(" ", "-")
        data_dir.mkdir()
        (data_dir / "registries.json").write_bytes(content)

        state, said = _start_and_stop(data_dir)

        assert state["created"]["files"] == 0 and state["live"]["compat_files"] == 0, case
        lines = said.strip().splitlines()
        assert len(lines) == 1 and "starting empty" in lines[0] and "Traceback" not in said, (case, said)
