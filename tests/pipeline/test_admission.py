"""Quotas are a queue, not an error: a run that meets a full account quota waits in line and starts when a slot
frees, first come first served, through the real functions and the emulator's quotas (never a patched count)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from emulator_support import Emulator
from harness import SFT_SAMPLE, Pipeline, http_json

CPT_SAMPLE = b'{"text": "a line of plain text for continued pre-training"}\n' * 3


def _fill_fine_tune_quota(pipeline: Pipeline) -> list[str]:
    """Another user of the account holds all 20 fine-tune slots; returns their job ids."""
    from bailian_flow.client import BailianClient

    async def upload() -> str:
        async with BailianClient(api_key="sk-test-other", base_url=pipeline.url) as client:
            return (await client.files.upload(SFT_SAMPLE, filename="other.jsonl")).file_id

    file_id = asyncio.run(upload())
    body = {"model": "qwen3-8b", "training_file_ids": [file_id]}
    return [
        pipeline.bailian("POST", "/api/v1/fine-tunes", {**body, "job_name": f"other-{i}"})["output"]["job_id"]
        for i in range(20)
    ]


def _settle(pipeline: Pipeline, rounds: int = 4) -> None:
    """Deliver every pending event, repeatedly (a delivery can write the next stage marker)."""
    for _ in range(rounds):
        if not pipeline.deliver_new():
            return


def _run(pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    return dict(pipeline.run(run_id)["run"])


def test_a_full_job_quota_queues_runs_first_come_first_served(pipeline: Pipeline) -> None:
    others = _fill_fine_tune_quota(pipeline)
    first = pipeline.upload("datasets/queue/first.jsonl", SFT_SAMPLE)
    _settle(pipeline)
    second = pipeline.upload("datasets/queue/second.jsonl", SFT_SAMPLE + b"\n")
    _settle(pipeline)

    run = _run(pipeline, first)
    assert run["stage"] == "waiting", run
    assert run["error"] is None
    assert run["waiting"]["quota"] == "fine-tune-jobs"
    assert (run["waiting"]["used"], run["waiting"]["limit"]) == (20, 20)
    assert run["waiting"]["redo"] == "file-ready"
    assert run["place_in_line"] == 1
    # The second run queued behind the first without asking Bailian (no second refused create).
    later = _run(pipeline, second)
    assert (later["stage"], later["place_in_line"]) == ("waiting", 2), later
    assert pipeline.created()["fine_tunes"] == 20

    # Succeeded jobs still hold their slots: a tick admits nobody.
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 200})
    report = pipeline.tick()
    assert report["admitted"] == []
    assert _run(pipeline, first)["stage"] == "waiting"

    # One slot frees (a job is deleted): the next tick starts the first in line, and only it.
    pipeline.bailian("DELETE", f"/api/v1/fine-tunes/{others[0]}")
    report = pipeline.tick()
    assert report["admitted"] == [first]
    _settle(pipeline)
    run = _run(pipeline, first)
    assert run["stage"] == "training" and run["job_id"], run
    later = _run(pipeline, second)
    assert (later["stage"], later["place_in_line"]) == ("waiting", 1), later
    stages = [entry["stage"] for entry in pipeline.history(first)]
    assert stages.count("waiting") == 1 and "failed" not in stages

    # The rest of the account frees up: the second run starts too, and both finish.
    for job_id in others[1:]:
        pipeline.bailian("DELETE", f"/api/v1/fine-tunes/{job_id}")
    assert pipeline.pump(second, timeout=60)["stage"] == "DONE"
    assert pipeline.pump(first, timeout=60)["stage"] == "DONE"
    assert pipeline.created()["fine_tunes"] == 22


def test_a_full_file_quota_queues_the_upload_until_a_file_is_deleted(
    emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_json(f"{emulator_reset.url}/_emulator/config", "POST", {"quotas": {"files": 1}})
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_QUOTA_FILES="1", BAILIAN_FLOW_ON_SUCCESS="none")
    first = pipeline.upload("datasets/files/first.jsonl", SFT_SAMPLE)
    _settle(pipeline)
    second = pipeline.upload("datasets/files/second.jsonl", SFT_SAMPLE + b"\n")
    _settle(pipeline)

    run = _run(pipeline, second)
    assert run["stage"] == "waiting", run
    assert run["waiting"]["quota"] == "files" and run["waiting"]["redo"] == "requested"
    assert run["waiting"]["needs_bytes"] == len(SFT_SAMPLE) + 1
    # The documented answer (HTTP 200, failed_uploads BadRequest.TooMany "Out of number, …"; contract C15).
    assert "Out of number" in pipeline.history(second)[-1]["changed"]
    assert run["file_id"] is None
    assert pipeline.tick()["admitted"] == []

    # The first run's file is deleted (as cleanup does once its job ended): the second run uploads.
    file_id = _run(pipeline, first)["file_id"]
    pipeline.bailian("DELETE", f"/api/v1/files/{file_id}")
    assert pipeline.tick()["admitted"] == [second]
    _settle(pipeline)
    run = _run(pipeline, second)
    assert run["stage"] in ("training", "starting-job", "file-ready"), run
    assert run["file_id"] and run["file_id"] != file_id
    assert pipeline.pump(second, timeout=60)["stage"] == "DONE"


def test_a_run_admitted_into_a_quota_taken_meanwhile_keeps_its_place(pipeline: Pipeline) -> None:
    others = _fill_fine_tune_quota(pipeline)
    first = pipeline.upload("datasets/again/first.jsonl", SFT_SAMPLE)
    _settle(pipeline)
    since = _run(pipeline, first)["waiting"]["since"]
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 200})
    pipeline.bailian("DELETE", f"/api/v1/fine-tunes/{others[0]}")
    assert pipeline.tick()["admitted"] == [first]
    # Someone else takes the slot before the run's event is answered (with a file of their own: the run's jobs are
    # known by the run's files, contract C3).
    theirs = pipeline.fine_tune(others[1])["training_file_ids"]
    pipeline.bailian("POST", "/api/v1/fine-tunes", {"model": "qwen3-8b", "training_file_ids": theirs})
    _settle(pipeline)

    run = _run(pipeline, first)
    assert run["stage"] == "waiting" and run["waiting"]["since"] == since, run
    assert run["place_in_line"] == 1
    assert pipeline.object_count("waiting/fine-tune-jobs/") == 1


def test_a_stale_hint_that_still_says_waiting_does_not_hide_an_admitted_run(pipeline: Pipeline) -> None:
    others = _fill_fine_tune_quota(pipeline)
    run_id = pipeline.upload("datasets/hint/first.jsonl", SFT_SAMPLE)
    _settle(pipeline)
    pipeline.tick()
    stale = pipeline.get("runs/_timer-state.json")
    assert stale is not None and json.loads(stale)["runs"][run_id]["stage"] == "waiting"
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 200})
    pipeline.bailian("DELETE", f"/api/v1/fine-tunes/{others[0]}")
    assert pipeline.tick()["admitted"] == [run_id]
    # A tick that overlapped the one above writes its older hint last.
    pipeline.put("runs/_timer-state.json", stale)
    _settle(pipeline)
    assert _run(pipeline, run_id)["stage"] == "training"

    pipeline.tick()
    hint = json.loads(pipeline.get("runs/_timer-state.json") or b"{}")
    assert hint["runs"][run_id]["stage"] == "training", "out of line, so looked at, so known again"


def test_a_burst_of_six_datasets_with_room_for_three_files_ends_six_done(
    emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14 point 2: a full file quota is the documented HTTP 200 with the file under failed_uploads
    # (BadRequest.TooMany), which must be a wait in the files line, never a FAILED run (contract C15, C16).
    http_json(f"{emulator_reset.url}/_emulator/config", "POST", {"quotas": {"files": 3}})
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_QUOTA_FILES="3", BAILIAN_FLOW_ON_SUCCESS="none")
    keys = [f"datasets/burst/{n}.jsonl" for n in range(6)]
    for n, key in enumerate(keys):
        pipeline.put(key, SFT_SAMPLE + b"\n" * n)  # six versions: six runs

    report = pipeline.pump(timeout=120, raising_ok=True)

    assert report["active"] == 0
    runs = [pipeline.run_for_key(key) for key in keys]
    assert [run["stage"] for run in runs] == ["DONE"] * 6, [(run["run_id"], run["stage"], run["error"]) for run in runs]
    assert any(entry["stage"] == "waiting" for run in runs for entry in pipeline.history(run["run_id"])), (
        "the burst never met the quota: nothing was proven"
    )
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"]) == (6, 6)
