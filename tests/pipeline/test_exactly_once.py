"""The main job end to end through the real functions, under duplicate, concurrent and broken deliveries."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from harness import SFT_SAMPLE, Pipeline

KEY = "datasets/support/train.jsonl"


def test_upload_becomes_a_deployed_model(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert run["deployed_model"], run
    assert run["deployed_model"].endswith(run["deploy_suffix"])
    assert run["job_name"] == f"bf-{run_id}-1", "the name sent, whatever the service kept (a hint)"
    stages = [entry["stage"] for entry in pipeline.run(run_id)["history"]]
    for expected in (
        "received",
        "uploading",
        "file-ready",
        "starting-job",
        "training",
        "job-succeeded",
        "deploying",
        "deployment-pending",
        "done",
    ):
        assert expected in stages, stages
    assert stages.index("file-ready") < stages.index("training") < stages.index("done")
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (1, 1, 1)
    # Each function ran on its own trigger; the pipeline's own writes never fed on_upload (no loops).
    assert [key for function, key in pipeline.delivered if function == "on_upload"] == [KEY]
    assert {function for function, _ in pipeline.delivered} == {"on_upload", "on_file_ready", "on_success"}


def test_five_concurrent_deliveries_of_every_event_make_one_of_each(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)

    report = pipeline.pump(duplicates=5)

    assert report["active"] == 0
    run = pipeline.run_for_key(KEY)
    assert run["stage"] == "DONE", run
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (1, 1, 1)
    # The same dataset event delivered again, much later, changes nothing.
    history_before = pipeline.run(run["run_id"])["history"]
    etag = pipeline.head_etag(KEY)
    late = _dataset_record(KEY, etag)
    pipeline.deliver(late, times=5)
    assert pipeline.run(run["run_id"])["history"] == history_before


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/api/v1/files", "files"), ("/api/v1/fine-tunes", "fine_tunes"), ("/api/v1/deployments", "deployments")],
)
def test_a_create_whose_answer_is_lost_is_reconciled_not_repeated(pipeline: Pipeline, path: str, kind: str) -> None:
    # The server processes the create, then the connection drops before the answer. The look-up may not see it
    # yet (a lagging list): the intent is held until the lists have caught up, then re-claimed and found.
    pipeline.short_leases()
    pipeline.fault(method="POST", path=path, drop="after", times=1)
    pipeline.put(KEY, SFT_SAMPLE)

    pipeline.pump(raising_ok=True)
    run = pipeline.run_for_key(KEY)

    assert run["stage"] == "DONE", run
    assert pipeline.created()[kind] == 1
    faults = _fault_hits(pipeline)
    assert faults == [1], "the fault must have fired"


def test_a_retried_delivery_resumes_a_released_claim(pipeline: Pipeline) -> None:
    # Bailian refuses the create (a definite answer: nothing was made): the handler releases its intent and raises
    # for FC to retry.
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", status=503, times=4)
    pipeline.put(KEY, SFT_SAMPLE)
    for record in pipeline.new_records():
        pipeline.deliver(record)
    ready = [r for r in pipeline.new_records() if r["oss"]["object"]["key"].endswith("-file-ready.json")]
    assert len(ready) == 1
    event = {"events": ready}
    with pytest.raises(Exception):  # noqa: B017 - whatever the transport error, it must escape for FC to retry
        pipeline.invoke("on_file_ready", event, request_id="req-retried")
    run_id = pipeline.run_for_key(KEY)["run_id"]
    assert pipeline.run(run_id)["run"]["stage"] == "starting-job"

    assert pipeline.run(run_id)["run"]["released"] is True
    assert pipeline.created()["fine_tunes"] == 0

    # FC's retry (whatever its request id) re-claims at once, no lease to wait.
    http_clear_faults(pipeline)
    pipeline.invoke("on_file_ready", event, request_id="req-retried")
    assert pipeline.run(run_id)["run"]["stage"] == "training"
    assert pipeline.pump(run_id)["stage"] == "DONE"
    assert pipeline.created()["fine_tunes"] == 1


def test_an_abandoned_claim_is_picked_up_by_the_timer_after_its_lease(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", drop="before", times=4)
    pipeline.put(KEY, SFT_SAMPLE)
    for record in pipeline.new_records():
        pipeline.deliver(record)
    ready = [r for r in pipeline.new_records() if r["oss"]["object"]["key"].endswith("-file-ready.json")]
    with pytest.raises(Exception):  # noqa: B017
        pipeline.invoke("on_file_ready", {"events": ready}, request_id="req-died")
    http_clear_faults(pipeline)
    run_id = pipeline.run_for_key(KEY)["run_id"]

    pipeline.tick()  # within the lease: nothing to do
    assert pipeline.run(run_id)["run"]["stage"] == "starting-job"

    pipeline.end_leases()
    report = pipeline.tick()
    assert report["redriven"] == [run_id]
    assert pipeline.pump(run_id)["stage"] == "DONE"
    assert pipeline.created()["fine_tunes"] == 1
    history = pipeline.history(run_id)
    assert [entry["changed"].startswith("re-announced") for entry in history].count(True) == 1
    # Reaching `training` was progress: the next stage's re-drives start from zero.
    assert pipeline.run(run_id)["run"]["redrives"] == 0


def test_a_lost_event_is_re_driven_by_the_timer(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    for record in pipeline.new_records():
        if record["oss"]["object"]["key"] == KEY:
            pipeline.deliver(record)
    run_id = pipeline.run_for_key(KEY)["run_id"]
    assert pipeline.run(run_id)["run"]["stage"] == "file-ready"
    pipeline.new_records()  # the file-ready event is lost: nobody delivers it

    pipeline.tick()
    assert pipeline.run(run_id)["run"]["stage"] == "file-ready", "not stale yet"

    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "0")
    assert pipeline.tick()["redriven"] == [run_id]
    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "600")
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE"
    assert pipeline.created()["fine_tunes"] == 1


def test_a_marker_its_killed_writer_never_wrote_is_written_at_the_next_tick_after_a_restart(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `bailian-flow dev` killed between a commit and its stage marker: the entry stands, the event never fires.
    pipeline.put(KEY, SFT_SAMPLE)
    for record in pipeline.new_records():
        if record["oss"]["object"]["key"] == KEY:
            pipeline.deliver(record)
    run_id = pipeline.run_for_key(KEY)["run_id"]
    markers = [r["oss"]["object"]["key"] for r in pipeline.new_records()]
    marker = next(key for key in markers if key.endswith("-file-ready.json"))
    pipeline._store_call(lambda store: store.delete(marker))
    pipeline.new_records()

    # On FC nobody can know the writer died: the marker waits for `redrive_after`.
    assert pipeline.tick()["redriven"] == []
    assert pipeline.get(marker) is None

    # The restarted stack knows every earlier writer is dead: the marker is written now, as the entry was.
    restart = datetime.now(timezone.utc).isoformat()
    monkeypatch.setenv("BAILIAN_FLOW_ACTORS_DEAD_BEFORE", restart)
    assert pipeline.tick()["redriven"] == [run_id]
    assert pipeline.get(marker) is not None
    assert pipeline.tick()["redriven"] == [], "a marker that exists is not written again"
    assert pipeline.run(run_id)["run"]["redrives"] == 0, "no re-announcing entry: the stage's own event fires"
    assert pipeline.pump(run_id)["stage"] == "DONE"
    assert pipeline.created()["fine_tunes"] == 1


def _dataset_record(key: str, etag: str) -> dict[str, object]:
    return {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": "2026-11-29T00:00:00.000Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": "acs:oss:cn-hangzhou:1234567890:flow-test",
                "name": "flow-test",
                "ownerIdentity": "1234567890",
                "virtualBucket": "",
            },
            "object": {"deltaSize": len(SFT_SAMPLE), "eTag": etag, "key": key, "size": len(SFT_SAMPLE)},
            "ossSchemaVersion": "1.0",
            "ruleId": "rule",
        },
        "region": "cn-hangzhou",
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"requestId": "late-delivery"},
        "userIdentity": {"principalId": "1234567890"},
    }


def _fault_hits(pipeline: Pipeline) -> list[int]:
    from harness import http_json

    body = http_json(f"{pipeline.url}/_emulator/faults")
    rules = body["rules"] if isinstance(body, dict) else body
    return [int(rule.get("hits", 0)) for rule in rules]


def http_clear_faults(pipeline: Pipeline) -> None:
    from harness import http_json

    http_json(f"{pipeline.url}/_emulator/faults", "DELETE")


def test_a_dataset_whose_upload_event_never_came_is_adopted_by_the_timer(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "0")
    old_key = "datasets/before-deployment/train.jsonl"
    pipeline.put(old_key, SFT_SAMPLE)
    pipeline.new_records()  # nobody was listening yet
    time.sleep(2.1)  # clear of the second of overlap the cursor keeps
    assert pipeline.tick()["adopted"] == [], "the first tick only starts watching"
    time.sleep(1.1)  # listings have whole seconds; the cursor keeps one second of overlap

    pipeline.put(KEY, SFT_SAMPLE)
    pipeline.new_records()  # the upload's event is lost for good

    adopted = pipeline.tick()["adopted"]
    assert len(adopted) == 1
    run = pipeline.run(adopted[0])["run"]
    assert run["source"]["key"] == KEY
    assert pipeline.tick()["adopted"] == [], "a dataset is adopted once"

    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "600")
    assert pipeline.pump(adopted[0])["stage"] == "DONE"
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (1, 1, 1)
    assert [r["source"]["key"] for r in pipeline.runs()] == [KEY], "datasets older than the deployment stay alone"
