"""Cleanup and retention (what keeps run 1,000 working), teardown and the deployment TTL, through the real functions."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from harness import SFT_SAMPLE, Pipeline, http_json

KEY = "datasets/life/train.jsonl"


def _live(pipeline: Pipeline) -> dict[str, int]:
    return dict(http_json(f"{pipeline.url}/_emulator/state")["live"])


def _deployment(pipeline: Pipeline, name: str) -> dict[str, Any]:
    return dict(pipeline.bailian("GET", f"/api/v1/deployments/{name}")["output"])


def test_a_run_deletes_its_files_once_the_job_ended_and_keeps_the_dataset(pipeline: Pipeline) -> None:
    pipeline.put(KEY.replace("train", "valid"), SFT_SAMPLE)
    pipeline.put(KEY + ".flow.yaml", f"validation_key: {KEY.replace('train', 'valid')}\n".encode())
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    pipeline.pump()  # the validation file's own upload is a run too
    assert pipeline.created()["files"] == 3
    assert _live(pipeline)["files"] == 0
    assert sorted(run["files_deleted"]) == sorted([run["file_id"], run["validation_file_id"]])
    succeeded = next(entry for entry in pipeline.history(run_id) if entry["stage"] == "job-succeeded")
    assert run["file_id"] in succeeded["changed"] and "files deleted" in succeeded["changed"]
    assert pipeline.get(KEY) == SFT_SAMPLE, "the dataset stays in OSS"


def test_a_failed_job_deletes_its_files_too(pipeline: Pipeline) -> None:
    pipeline.script("fine_tune", "FAILED")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    failed = pipeline.pump(run_id)

    assert failed["stage"] == "FAILED" and failed["files_deleted"] == [failed["file_id"]]
    assert _live(pipeline)["files"] == 0
    # A retry uploads the dataset again: tests/pipeline/test_failures.py


def test_delete_after_deploy_deletes_the_job_once_its_model_is_deployed(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-job-retention": "delete-after-deploy"})

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE" and run["job_deleted"] is True
    assert _live(pipeline)["fine_tunes"] == 0
    assert _deployment(pipeline, run["deployed_model"])["status"] == "RUNNING", "the deployment keeps serving"
    assert "retention delete-after-deploy" in pipeline.history(run_id)[-1]["changed"]


def test_keep_last_n_prunes_older_jobs_but_never_a_keep_run(emulator_reset: Any, monkeypatch: Any) -> None:
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_JOB_RETENTION="keep-last-1")
    kept = pipeline.upload("datasets/life/a.jsonl", SFT_SAMPLE, metadata={"flow-job-retention": "keep"})
    assert pipeline.pump(kept)["stage"] == "DONE"
    older = pipeline.upload("datasets/life/b.jsonl", SFT_SAMPLE)
    assert pipeline.pump(older)["stage"] == "DONE"
    newest = pipeline.upload("datasets/life/c.jsonl", SFT_SAMPLE)

    run = pipeline.pump(newest)

    assert run["stage"] == "DONE"
    jobs = pipeline.bailian("GET", "/api/v1/fine-tunes?page_size=100")["output"]["jobs"]
    assert sorted(job["job_name"] for job in jobs) == sorted([f"bf-{kept}-1", f"bf-{newest}-1"])
    older_job = pipeline.run(older)["run"]["job_id"]
    assert f"{older_job} (run {older})" in pipeline.history(newest)[-1]["changed"]


def _jobs(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.bailian("GET", "/api/v1/fine-tunes?page_size=100")["output"]["jobs"])


def _retention_notes(pipeline: Pipeline, run_id: str) -> list[dict[str, Any]]:
    return [entry for entry in pipeline.history(run_id) if "deleted by job retention" in entry["changed"]]


def test_keep_last_10_records_a_pruned_job_in_its_own_runs_history(pipeline: Pipeline) -> None:
    first = pipeline.upload("datasets/keep/00.jsonl", SFT_SAMPLE)
    first_job = pipeline.pump(first)["job_id"]
    for index in range(1, 10):
        pipeline.put(f"datasets/keep/{index:02d}.jsonl", SFT_SAMPLE)
    pipeline.pump(timeout=90)
    assert _live(pipeline)["fine_tunes"] == 10 and _retention_notes(pipeline, first) == []
    eleventh = pipeline.upload("datasets/keep/10.jsonl", SFT_SAMPLE)

    assert pipeline.pump(eleventh)["stage"] == "DONE"

    shown = pipeline.run(first)
    assert (shown["run"]["stage"], shown["run"]["job_deleted"]) == ("DONE", True)
    [note] = _retention_notes(pipeline, first)
    assert note["stage"] == "done"
    assert note["changed"] == (
        f"fine-tune job {first_job} deleted by job retention keep-last-10 of run {eleventh} "
        "(only the 10 newest succeeded jobs are kept)"
    )
    assert f"{first_job} (run {first})" in pipeline.history(eleventh)[-1]["changed"], "the finisher mentions it"
    assert _live(pipeline)["fine_tunes"] == 10


def test_a_failed_run_whose_job_was_pruned_retries_by_training_again(
    emulator_reset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_JOB_RETENTION="keep-last-1")
    pipeline.script("deployment", "FAILED")
    failed = pipeline.upload("datasets/life/a.jsonl", SFT_SAMPLE)
    assert pipeline.pump(failed)["stage"] == "FAILED"
    later = pipeline.upload("datasets/life/b.jsonl", SFT_SAMPLE)
    assert pipeline.pump(later)["stage"] == "DONE"
    assert pipeline.run(failed)["run"]["job_deleted"] is True
    assert len(_retention_notes(pipeline, failed)) == 1

    status, body = pipeline.api("POST", f"/runs/{failed}/retry")

    assert status == 202, body
    assert body["run"]["stage"] != "job-succeeded", "its model went with the job: it trains again"
    run = pipeline.pump(failed)
    assert (run["stage"], run["attempt"]) == ("DONE", 2)
    assert pipeline.created()["fine_tunes"] == 3


def test_a_prune_cut_short_after_its_record_deletes_the_job_later_without_a_second_entry(
    emulator_reset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_JOB_RETENTION="keep-last-1")
    older = pipeline.upload("datasets/life/a.jsonl", SFT_SAMPLE)
    older_job = pipeline.pump(older)["job_id"]
    # Bailian fails every delete for a while: the older run's entry is written, its job not yet deleted.
    pipeline.fault(method="DELETE", path="/api/v1/fine-tunes/*", status=500, code="InternalError", times=8)
    newer = pipeline.upload("datasets/life/b.jsonl", SFT_SAMPLE)
    deadline = time.monotonic() + 30
    while not _retention_notes(pipeline, older) and time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the finishing delivery fails on the delete, as FC would see it
            pipeline.pump(newer, timeout=1)
    assert len(_retention_notes(pipeline, older)) == 1 and sum(pipeline.fault_hits()) > 0
    assert older_job in {job["job_id"] for job in _jobs(pipeline)}, "recorded first, deleted after"
    pipeline.clear_faults()

    assert pipeline.pump(newer)["stage"] == "DONE"

    assert len(_retention_notes(pipeline, older)) == 1
    assert older_job not in {job["job_id"] for job in _jobs(pipeline)}


def test_the_default_retention_keeps_runs_flowing_past_the_job_quota(pipeline: Pipeline) -> None:
    # 24 runs in three waves: without retention the 21st would meet "Only 20 fine-tune job ... allowed".
    # (keep-last-10 leaves 10 of the 20 slots for jobs in flight; more at once is admission's to queue.)
    for wave in range(3):
        for index in range(8):
            pipeline.put(f"datasets/flow/{wave}-{index}.jsonl", SFT_SAMPLE)
        pipeline.pump(timeout=90)

    runs = pipeline.runs()
    assert len(runs) == 24
    assert {run["stage"] for run in runs} == {"DONE"}, [run["error"] for run in runs if run["error"]]
    assert _live(pipeline)["fine_tunes"] == 10, "keep-last-10"
    assert _live(pipeline)["files"] == 0


def test_teardown_undeploys_a_done_run_once(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    deployed = pipeline.pump(run_id)["deployed_model"]

    first = pipeline.api("POST", f"/runs/{run_id}/teardown")
    again = pipeline.api("POST", f"/runs/{run_id}/teardown")

    assert first[0] == again[0] == 200
    assert first[1]["run"]["undeployed_at"] and first[1]["run"] == again[1]["run"]
    assert first[1]["run"]["stage"] == "DONE"
    assert _deployment(pipeline, deployed)["status"] == "DELETING"
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 60})
    assert _live(pipeline)["deployments"] == 0
    history = pipeline.history(run_id)
    assert [entry["changed"] for entry in history].count(f"undeployed {deployed} (torn down through the API)") == 1


def test_a_refused_teardown_is_retried_by_the_timer_until_it_lands_never_recorded_before(pipeline: Pipeline) -> None:
    # Whether a RUNNING deployment may be deleted is undocumented (service-contract.md#C26): the strictest reading
    # refuses it until the deployment is stopped (in the console; the emulator stands in with its own stop).
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    deployed = pipeline.pump(run_id)["deployed_model"]
    http_json(f"{pipeline.url}/_emulator/config", "POST", {"delete_requires_stopped": True})

    status, body = pipeline.api("POST", f"/runs/{run_id}/teardown")

    assert status == 200, body
    assert body["run"]["undeployed_at"] is None and body["run"]["deployment_expires_at"], body
    assert "tries again every tick" in pipeline.history(run_id)[-1]["changed"]
    pipeline.tick()
    assert pipeline.run(run_id)["run"]["undeployed_at"] is None  # still refused: nothing recorded
    assert _deployment(pipeline, deployed)["status"] == "RUNNING"

    http_json(f"{pipeline.url}/_emulator/deployments/{deployed}/stop", "POST", {})
    assert pipeline.tick()["undeployed"] == [run_id]
    run = pipeline.run(run_id)["run"]
    assert run["undeployed_at"] and pipeline.object_count("ttl/") == 0
    assert pipeline.tick()["undeployed"] == []  # once


def test_teardown_refuses_what_it_cannot_undeploy(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-on-success": "none"})
    assert pipeline.pump(run_id)["stage"] == "DONE"

    nothing = pipeline.api("POST", f"/runs/{run_id}/teardown")
    missing = pipeline.api("POST", "/runs/r0123456789abcde/teardown")

    assert nothing[0] == 409 and "deployed nothing" in nothing[1]["error"]["message"]
    assert missing[0] == 404


def test_deployment_ttl_undeploys_after_its_time_from_its_own_index(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-deployment-ttl": "2s"})
    run = pipeline.pump(run_id)
    assert run["deployment_expires_at"] and pipeline.object_count("ttl/") == 1
    assert pipeline.tick()["undeployed"] == [], "not yet due"
    assert pipeline.object_count("active/") == 0, "a DONE run is off the active list"

    time.sleep(2.1)
    reports = [pipeline.tick(), pipeline.tick()]

    assert [report["undeployed"] for report in reports] == [[run_id], []]
    assert pipeline.object_count("ttl/") == 0
    final = pipeline.run(run_id)
    assert final["run"]["undeployed_at"]
    assert "deployment_ttl expired" in final["history"][-1]["changed"]
    # DELETING lasts 0.1 s of real time here, too short to look at on a busy machine: past it, it is gone.
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 60})
    assert _live(pipeline)["deployments"] == 0


def test_tearing_down_a_ttl_run_early_clears_its_ttl_entry(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-deployment-ttl": "7d"})
    pipeline.pump(run_id)

    status, _ = pipeline.api("POST", f"/runs/{run_id}/teardown")

    assert status == 200
    assert pipeline.object_count("ttl/") == 0


@pytest.mark.parametrize("value", ["soon", "0s", "400d"])
def test_a_bad_ttl_fails_the_run_naming_the_setting(pipeline: Pipeline, value: str) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-deployment-ttl": value})

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED"
    assert run["error"]["field"] == "on_success.deployment_ttl"
    assert pipeline.created()["files"] == 0
