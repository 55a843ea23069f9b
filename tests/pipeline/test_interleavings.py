"""The interleavings of issue #10, each through the real functions against the emulator.

Each test ends by checking what the product promises whatever happened on the way: per object version at most one
live file, one live fine-tune (not canceled) and one deployment, every one of them the one its run records, and no
run left where nobody polls it (every unfinished run carries an active marker).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
from harness import SFT_SAMPLE, Pipeline

KEY = "datasets/interleavings/train.jsonl"
SMALLER = b"".join(SFT_SAMPLE.splitlines(keepends=True)[:10])
ENDED = ("DONE", "FAILED", "CANCELED")


def live_resources(pipeline: Pipeline) -> dict[str, list[dict[str, Any]]]:
    """What exists on the emulated Bailian now: files, fine-tunes not canceled or failed, deployments."""
    files = pipeline.bailian("GET", "/api/v1/files?page_size=100")["data"]["files"]
    jobs = pipeline.bailian("GET", "/api/v1/fine-tunes?page_size=100")["output"]["jobs"]
    deployments = pipeline.bailian("GET", "/api/v1/deployments?page_size=200")["output"]["deployments"]
    return {
        "files": files,
        "jobs": [job for job in jobs if job["status"] not in ("CANCELED", "CANCELING", "FAILED")],
        "deployments": deployments,
    }


def assert_exactly_once(pipeline: Pipeline, versions: int = 1) -> None:
    """At most one live resource of each kind per object version, each recorded by a run; every open run marked."""
    live = live_resources(pipeline)
    runs = [pipeline.run(run["run_id"])["run"] for run in pipeline.runs()]
    for kind, recorded in (("files", "file_id"), ("jobs", "job_id"), ("deployments", "deployed_model")):
        assert len(live[kind]) <= versions, (kind, live[kind])
        ids = {item.get("file_id") or item.get("job_id") or item.get("deployed_model") for item in live[kind]}
        assert ids <= {run.get(recorded) for run in runs}, (kind, ids, runs)
    open_runs = {run["run_id"] for run in runs if run["stage"] not in ENDED}
    marked = {info.rsplit("/", 1)[-1] for info in _keys(pipeline, "active/")}
    assert open_runs <= marked, f"unpolled runs: {open_runs - marked}"


def _keys(pipeline: Pipeline, prefix: str) -> list[str]:
    async def keys(store: Any) -> list[str]:
        return [info.key async for info in store.list(prefix)]

    result: list[str] = pipeline._store_call(keys)
    return result


def deliver_expecting_failure(pipeline: Pipeline) -> None:
    """Deliver every new event once; a delivery that raises is what FC would retry later."""
    for record in pipeline.new_records():
        with contextlib.suppress(Exception):  # FC's retry is the caller's business
            pipeline.deliver(record)


# --- 1. an overwrite mid-run ---------------------------------------------------------------------------------------


def test_a_dataset_overwritten_mid_run_trains_only_the_newer_version(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # v1 stalls at `uploading`: Bailian refuses its file for now.
    pipeline.fault(method="POST", path="/api/v1/files", status=503, times=1000)
    pipeline.put(KEY, SFT_SAMPLE)
    deliver_expecting_failure(pipeline)
    v1 = pipeline.run_for_key(KEY)["run_id"]
    assert pipeline.run(v1)["run"]["stage"] == "uploading"
    pipeline.clear_faults()

    # The user re-uploads the key; v2 runs to the end.
    pipeline.put(KEY, SMALLER)
    deliver_expecting_failure(pipeline)
    v2 = next(run["run_id"] for run in pipeline.runs() if run["run_id"] != v1)
    assert pipeline.pump(v2)["stage"] == "DONE"

    # After the lease the timer re-drives v1: its version is gone, it must not train v2's bytes.
    pipeline.end_leases()
    run = pipeline.pump(v1)
    assert run["stage"] == "FAILED", run
    assert run["error"]["code"] == "Superseded"
    assert v2 in run["error"]["reason"]
    assert pipeline.run(v2)["run"]["records"] == 10
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (1, 1, 1)
    assert_exactly_once(pipeline)

    # A retry of v1 is refused: the key holds v2's version now, and v2's run is named.
    status, body = pipeline.api("POST", f"/runs/{v1}/retry")
    assert status == 409, body
    assert body["error"]["code"] == "Superseded" and v2 in body["error"]["message"]


def test_an_overwrite_while_streaming_fails_the_run_as_superseded(pipeline: Pipeline) -> None:
    # The overwrite lands between the HEAD that pins the version and the ranged reads (slowed down here).
    pipeline.fault(method="GET", path=f"/flow-test/{KEY}", latency=1.0, times=1)
    pipeline.put(KEY, SFT_SAMPLE)
    records = pipeline.new_records()
    overwrite = threading.Timer(0.5, lambda: pipeline.put(KEY, SMALLER))
    overwrite.start()
    for record in records:
        pipeline.deliver(record)
    overwrite.join()
    first = next(run for run in pipeline.runs() if run["source"]["etag"] != pipeline.head_etag(KEY).upper())
    run = pipeline.run(first["run_id"])["run"]
    assert run["stage"] == "FAILED", run
    assert run["error"]["code"] == "Superseded"
    assert pipeline.created()["files"] == 0


# --- 5. a marker write refused once --------------------------------------------------------------------------------


def test_a_refused_marker_write_does_not_strand_the_run(pipeline: Pipeline) -> None:
    pipeline.fault(method="PUT", path="/flow-test/active/*", status=403, code="AccessDenied", times=1)
    pipeline.put(KEY, SFT_SAMPLE)
    records = pipeline.new_records()
    with pytest.raises(Exception):  # noqa: B017 - the handler must fail for FC to retry it
        pipeline.deliver(records[0])
    assert pipeline.fault_hits() == [1]

    pipeline.deliver(records[0])  # FC's retry
    run_id = pipeline.run_for_key(KEY)["run_id"]
    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert_exactly_once(pipeline)


def test_a_redelivery_re_marks_an_open_run_that_lost_its_marker(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    records = pipeline.new_records()
    pipeline.deliver(records[0])
    run_id = pipeline.run_for_key(KEY)["run_id"]
    pipeline._store_call(lambda store: store.delete(f"active/{run_id}"))  # as if written before markers came first

    pipeline.deliver(records[0])

    assert _keys(pipeline, "active/") == [f"active/{run_id}"]
    assert pipeline.pump(run_id)["stage"] == "DONE"


# --- 6. a slow clear ---------------------------------------------------------------------------------------------


def test_a_late_clear_does_not_unmark_a_revived_run(pipeline: Pipeline) -> None:
    pipeline.script("fine_tune", "FAILED")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    deadline = time.monotonic() + 20
    while pipeline.run(run_id)["run"]["stage"] != "training" and time.monotonic() < deadline:
        pipeline.deliver_new()
    time.sleep(1.0)  # the scripted failure happens in emulated time (time scale 100)

    # The tick that records FAILED clears the marker slowly; the run is retried meanwhile.
    pipeline.fault(method="DELETE", path="/flow-test/active/*", latency=2.0, times=1)
    ticking = threading.Thread(target=pipeline.tick)
    ticking.start()
    while pipeline.run(run_id)["run"]["stage"] != "FAILED" and time.monotonic() < deadline:
        time.sleep(0.05)
    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")
    assert status == 202, body
    ticking.join()
    assert pipeline.fault_hits() == [1], "the clear must have been the slow one"

    assert _keys(pipeline, "active/") == [f"active/{run_id}"]
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    assert_exactly_once(pipeline)


# --- 2. cancel during an in-flight create ------------------------------------------------------------------------


def _file_ready_event(pipeline: Pipeline) -> dict[str, Any]:
    """Run the upload leg; return the file-ready event, not yet delivered."""
    pipeline.put(KEY, SFT_SAMPLE)
    for record in pipeline.new_records():
        pipeline.deliver(record)
    ready = [r for r in pipeline.new_records() if r["oss"]["object"]["key"].endswith("-file-ready.json")]
    assert len(ready) == 1
    return {"events": ready}


def _wait_for_stage(pipeline: Pipeline, run_id: str, stage: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while pipeline.run(run_id)["run"]["stage"] != stage:
        assert time.monotonic() < deadline, pipeline.run(run_id)
        time.sleep(0.05)


def _changes(pipeline: Pipeline, run_id: str) -> str:
    return "\n".join(entry["changed"] for entry in pipeline.history(run_id))


def test_cancel_during_an_in_flight_create_leaves_no_running_job(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _file_ready_event(pipeline)
    run_id = pipeline.run_for_key(KEY)["run_id"]
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", latency=3.0, times=1)
    starting = threading.Thread(target=pipeline.invoke, args=("on_file_ready", event))
    starting.start()
    _wait_for_stage(pipeline, run_id, "starting-job")

    status, body = pipeline.api("POST", f"/runs/{run_id}/cancel")
    assert status == 200, body
    assert body["run"]["stage"] == "canceling", "an act is in flight: the cancel waits out its lease"
    starting.join()  # the create lands now, after the cancel

    assert pipeline.created()["fine_tunes"] == 1
    assert live_resources(pipeline)["jobs"] == [], "the late job was undone by the actor that made it"
    assert "compensated: canceled fine-tune" in _changes(pipeline, run_id)
    pipeline.tick()
    assert pipeline.run(run_id)["run"]["stage"] == "canceling", "still within the lease"

    pipeline.end_leases()
    pipeline.tick()
    run = pipeline.run(run_id)["run"]
    assert run["stage"] == "CANCELED", run
    assert pipeline.tick()["active"] == 0
    assert_exactly_once(pipeline)
    assert live_resources(pipeline)["files"] == [], "the cancel deleted the run's file"


def test_a_cancel_finalized_before_a_slow_create_lands_still_wins(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run on the user's own registered file: the cancel must not delete it, so the slow create can land.
    file_id = _register_file(pipeline)
    status, body = pipeline.api("POST", "/runs", {"file_id": file_id})
    assert status == 202, body
    run_id = body["run"]["run_id"]
    event = {"events": [r for r in pipeline.new_records() if r["oss"]["object"]["key"].endswith("-file-ready.json")]}
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", latency=3.0, times=1)
    starting = threading.Thread(target=pipeline.invoke, args=("on_file_ready", event))
    starting.start()
    _wait_for_stage(pipeline, run_id, "starting-job")

    # A lease shorter than the act (a wrong clock, a slow instance): the cancel finalizes at once ...
    pipeline.end_leases()
    status, body = pipeline.api("POST", f"/runs/{run_id}/cancel")
    assert (status, body["run"]["stage"]) == (200, "CANCELED")
    starting.join()

    # ... and the create that lands after it is undone all the same, by the log's fence.
    assert pipeline.run(run_id)["run"]["stage"] == "CANCELED"
    assert pipeline.created()["fine_tunes"] == 1
    assert live_resources(pipeline)["jobs"] == []
    assert "compensated: canceled fine-tune" in _changes(pipeline, run_id)
    assert [item["file_id"] for item in live_resources(pipeline)["files"]] == [file_id], "the user's file stays"


# --- 3. the same writer's retry while its create is unseen ---------------------------------------------------------


def test_a_retry_with_the_same_request_id_waits_for_a_create_the_list_does_not_show_yet(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _file_ready_event(pipeline)
    run_id = pipeline.run_for_key(KEY)["run_id"]
    _config(pipeline, list_lag_seconds=600)
    # The create is processed, its answer lost: the actor looks, the lagging list shows nothing.
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", drop="after", times=1)
    with pytest.raises(Exception):  # noqa: B017 - escapes for FC to retry
        pipeline.invoke("on_file_ready", event, request_id="req-same")
    assert pipeline.run(run_id)["run"]["stage"] == "starting-job"

    pipeline.invoke("on_file_ready", event, request_id="req-same")  # FC's retry, same request id
    pipeline.invoke("on_file_ready", event, request_id="req-other")
    assert pipeline.created()["fine_tunes"] == 1, "no second create while the first may be unseen"
    assert pipeline.run(run_id)["run"]["stage"] == "starting-job"

    # After the lease (longer than any list lag) a re-claim finds the job by its file and adopts it.
    _advance_clock(pipeline, 600)
    pipeline.end_leases()
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    assert pipeline.created()["fine_tunes"] == 1
    assert_exactly_once(pipeline)


# --- 4. a slow owner past its lease ------------------------------------------------------------------------------


def test_a_slow_owner_past_its_lease_undoes_its_late_job(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    event = _file_ready_event(pipeline)
    run_id = pipeline.run_for_key(KEY)["run_id"]
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", latency=3.0, times=1)
    owner = threading.Thread(target=pipeline.invoke, args=("on_file_ready", event))
    owner.start()
    _wait_for_stage(pipeline, run_id, "starting-job")

    # The lease runs out while the owner is still creating: the timer re-drives, a second actor makes a job.
    pipeline.end_leases()
    assert pipeline.tick()["redriven"] == [run_id]
    pipeline.deliver_new()
    assert pipeline.run(run_id)["run"]["stage"] == "training"
    owner.join()  # the owner's create lands late; its result commit loses to the recorded one

    assert pipeline.created()["fine_tunes"] == 2
    assert len(live_resources(pipeline)["jobs"]) == 1
    assert "compensated: canceled fine-tune" in _changes(pipeline, run_id)
    monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", "660")
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    assert_exactly_once(pipeline)


def _config(pipeline: Pipeline, **settings: Any) -> None:
    from harness import http_json

    http_json(f"{pipeline.url}/_emulator/config", "POST", settings)


def _advance_clock(pipeline: Pipeline, seconds: float) -> None:
    from harness import http_json

    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": seconds})


def _register_file(pipeline: Pipeline) -> str:
    from bailian_flow.client import BailianClient

    async def upload() -> str:
        async with BailianClient(api_key="sk-test-pipeline", base_url=pipeline.url) as client:
            uploaded = await client.files.upload(SFT_SAMPLE, purpose="fine-tune", filename="train.jsonl")
            return uploaded.file_id

    return asyncio.run(upload())
