"""Issue #17: however a run ends, it owns nothing on Bailian that it should not.

Every way a run becomes terminal goes through one end of life (`canceling`, or `cleaning-up` for a failure) that
undoes what the run made by its records and by name, stays visible while Bailian refuses an undo for now, and is
tried again by the timer every tick, whatever its hint remembers. Each test drives the real functions against an
emulator whose clock moves only when the test says, so the interleaving is held, not raced.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from emulator_support import TEST_API_KEY, Emulator, start_emulator
from harness import SFT_SAMPLE, Pipeline, http_json

KEY = "datasets/end-of-life/train.jsonl"
MARKER = "imports/end-of-life/lora.import.yaml"
MARKER_BODY = b"import: {object_key: models/lora/, model_name: qwen3-8b, weight_type: lora}\n"
MU = {"model": "qwen3-8b", "plan": "mu", "deploy_spec": "MU1", "capacity": 1}
DEPLOY_BODY = {"model_name": "qwen3-8b", "plan": "mu", "deploy_spec": "MU1", "capacity": 1}


@pytest.fixture(scope="module")
def frozen_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    process, url = start_emulator(tmp_path_factory.mktemp("frozen-eol"), "--time-scale", "0.0001")
    try:
        yield Emulator(url=url, api_key=TEST_API_KEY, data_dir=tmp_path_factory.mktemp("unused-eol"))
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def frozen(frozen_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    frozen_emulator.reset()
    return Pipeline(frozen_emulator.url, monkeypatch)


def advance(pipeline: Pipeline, seconds: float) -> None:
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": seconds})


def drive_to(pipeline: Pipeline, run_id: str, stage: str, rounds: int = 6) -> dict[str, Any]:
    for _ in range(rounds):
        run = pipeline.run(run_id)["run"]
        if run["stage"] == stage:
            return dict(run)
        pipeline.deliver_new()
    raise AssertionError(f"run {run_id} did not reach {stage}: {pipeline.run(run_id)['run']}")


def changes(pipeline: Pipeline, run_id: str) -> list[str]:
    return [entry["changed"] for entry in pipeline.history(run_id)]


def gone(pipeline: Pipeline, path: str) -> bool:
    try:
        pipeline.bailian("GET", path)
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    return False


def imports(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.bailian("GET", "/api/v1/custom_models/import?page_size=100")["output"]["list"])


# --- case 1: an undo refused for now keeps the run canceling ------------------------------------------------------


def test_a_cancel_while_an_import_runs_stays_canceling_until_the_import_can_be_deleted(frozen: Pipeline) -> None:
    frozen.put(MARKER, MARKER_BODY)
    frozen.deliver_new()
    run_id = frozen.run_for_key(MARKER)["run_id"]
    running = drive_to(frozen, run_id, "import-running")

    status, body = frozen.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200, body
    assert body["run"]["stage"] == "canceling", "an import still running cannot be deleted yet: not CANCELED"
    assert any("not undone yet (OperationDenied)" in line for line in changes(frozen, run_id))
    assert f"import:{running['import_job_id']}" in frozen.run(run_id)["run"]["owns"]
    frozen.tick()
    assert frozen.run(run_id)["run"]["stage"] == "canceling"
    assert sum("not undone yet" in line for line in changes(frozen, run_id)) >= 2, "each try is in the history"

    advance(frozen, 120)  # the import ends (SUCCEEDED): now it can go
    frozen.tick()

    run = frozen.run(run_id)["run"]
    assert run["stage"] == "CANCELED", run
    assert imports(frozen) == [], "nothing of the run's is left to succeed unowned"
    assert run["owns"] == []
    assert frozen.created()["deployments"] == 0


# --- case 2: a cancel whose sweep failed is finished, whatever the timer's hint says -----------------------------


def test_a_cancel_whose_sweep_failed_is_finished_though_the_jobs_status_never_moved(frozen: Pipeline) -> None:
    run_id = frozen.upload(KEY, SFT_SAMPLE)
    training = drive_to(frozen, run_id, "training")
    frozen.tick()  # the hint now knows the run: training, its job's status unchanged since
    # Bailian fails the fine-tune's cancel through every retry of two requests.
    frozen.fault(method="POST", path="/api/v1/fine-tunes/*/cancel", status=503, code="ServiceUnavailable", times=8)

    status, body = frozen.api("POST", f"/runs/{run_id}/cancel")
    assert status == 200, body
    assert body["run"]["stage"] == "canceling"
    again, body = frozen.api("POST", f"/runs/{run_id}/cancel")
    assert again == 200 and body["run"]["stage"] == "canceling"
    assert sum("not undone yet" in line for line in changes(frozen, run_id)) == 2, "asked twice: tried twice"
    assert frozen.fine_tune(training["job_id"])["status"] not in ("CANCELING", "CANCELED")

    report = frozen.tick()  # the job's listed status has not moved: only the end-of-life marker brings it back

    assert report["ended"] == [run_id], report
    assert frozen.run(run_id)["run"]["stage"] == "CANCELED"
    assert frozen.fine_tune(training["job_id"])["status"] in ("CANCELING", "CANCELED")
    assert gone(frozen, f"/api/v1/files/{training['file_id']}")


def test_a_fine_tune_canceled_by_a_try_that_did_not_finish_is_not_owned_once_the_run_ends(frozen: Pipeline) -> None:
    run_id = frozen.upload(KEY, SFT_SAMPLE)
    training = drive_to(frozen, run_id, "training")
    # The first try cancels the fine-tune but its file's delete is refused: the run stays canceling. The next try
    # finds the job listed as canceled (nothing left to undo) and must still count it among what the run undid.
    frozen.fault(method="DELETE", path="/api/v1/files/*", status=400, code="OperationDenied", times=1)

    status, body = frozen.api("POST", f"/runs/{run_id}/cancel")
    assert status == 200 and body["run"]["stage"] == "canceling", body
    assert frozen.fine_tune(training["job_id"])["status"] in ("CANCELING", "CANCELED")

    frozen.tick()

    run = frozen.run(run_id)["run"]
    assert run["stage"] == "CANCELED", run
    assert gone(frozen, f"/api/v1/files/{training['file_id']}")
    assert run["owns"] == [], "the job the first try canceled is still named as the run's"


# --- case 3: files go by the ids the run records, whatever the list shows ---------------------------------------


def test_a_cancel_while_the_file_list_lags_deletes_the_recorded_file(frozen: Pipeline) -> None:
    http_json(f"{frozen.url}/_emulator/config", "POST", {"list_lag_seconds": 600})
    run_id = frozen.upload(KEY, SFT_SAMPLE)
    ready = frozen.run(run_id)["run"]
    assert ready["stage"] == "file-ready" and ready["file_id"]
    assert frozen.bailian("GET", "/api/v1/files?page_size=100")["data"]["files"] == [], "the list lags the upload"

    status, body = frozen.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200 and body["run"]["stage"] == "CANCELED", body
    assert gone(frozen, f"/api/v1/files/{ready['file_id']}")
    assert frozen.run(run_id)["run"]["owns"] == []


# --- case 4: a retry after a shard was refused keeps what was answered ------------------------------------------


def batch_input(count: int) -> bytes:
    lines = (
        {
            "custom_id": f"req-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
        }
        for n in range(1, count + 1)
    )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_a_retry_after_a_shard_was_refused_sends_only_the_lines_not_answered(
    frozen_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen_emulator.reset()
    # One batch at a time, on a clock that moves only when told: shard 1 is sent only after shard 0 has finished,
    # and a delivery collects shard 0 before it sends shard 1, so the refusal always meets shard 0's answers.
    pipeline = Pipeline(
        frozen_emulator.url, monkeypatch, BAILIAN_FLOW_BATCH_SHARD_LINES="40", BAILIAN_FLOW_QUOTA_BATCHES="1"
    )
    http_json(f"{pipeline.url}/_emulator/config", "POST", {"quotas": {"batches": 1}})
    key = "batches/end-of-life/questions.jsonl"
    run_id = pipeline.upload(key, batch_input(80))
    assert pipeline.created()["batches"] == 1
    pipeline.fault(method="POST", path="/compatible-mode/v1/batches", status=400, code="Arrearage", times=1)
    advance(pipeline, 60)  # shard 0 completes

    failed = pipeline.pump(run_id)
    assert failed["stage"] == "FAILED" and "Arrearage" in failed["error"]["reason"], failed
    assert [shard["index"] for shard in failed["batch"]["shards"] if shard["part_key"]] == [0]

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")
    assert status == 202 and body["run"]["stage"] == "batch-ready", body
    for _ in range(6):
        pipeline.deliver_new()
        advance(pipeline, 60)
        pipeline.tick()
    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "DONE", run
    assert pipeline.created()["batches"] == 2, "shard 0's 40 lines are not sent (nor paid for) again"
    output = pipeline.get(f"results/end-of-life/questions/{run_id}/output.jsonl") or b""
    assert [json.loads(line)["custom_id"] for line in output.splitlines()] == [f"req-{n}" for n in range(1, 81)]
    assert http_json(f"{pipeline.url}/_emulator/state")["live"]["compat_files"] == 0


# --- case 5: a lost `done` commit, and a Stuck failure ------------------------------------------------------------


def test_a_run_recording_its_deployment_running_is_finished_though_its_status_never_changes(
    frozen: Pipeline,
) -> None:
    from bailian_flow.pipeline.protocol.transitions import current_of
    from bailian_flow.pipeline.timer.timer_state import Brief, TimerState, write_timer_state
    from bailian_flow.runlog import RunLog

    run_id = frozen.upload(KEY, SFT_SAMPLE)
    drive_to(frozen, run_id, "training")
    advance(frozen, 100)  # the job succeeds
    frozen.tick()
    pending = drive_to(frozen, run_id, "deployment-pending")
    advance(frozen, 60)  # the deployment is RUNNING

    # A re-claim adopted the running deployment (recording RUNNING) and its `done` lost to a same-stage note; the
    # tick that read it remembered what it read.
    async def lose_the_done(store: Any) -> None:
        runs = RunLog(store, prefix="runs/")
        latest = await runs.latest(run_id)
        assert latest is not None
        state = {**latest.state, "deployment_status": "RUNNING"}
        assert await runs.append(run_id, latest.seq + 1, latest.stage, state, changed="adopted", writer="test")
        current = current_of(await runs.latest(run_id))  # type: ignore[arg-type]
        hint = TimerState(runs={run_id: Brief.of(current.state, current.at)})
        await write_timer_state(store, "runs/", hint)

    frozen._store_call(lose_the_done)
    assert frozen.bailian("GET", f"/api/v1/deployments/{pending['deployed_model']}")["output"]["status"] == "RUNNING"

    frozen.tick()

    assert frozen.run(run_id)["run"]["stage"] == "DONE"


def test_a_stuck_run_sweeps_what_it_made(frozen: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = frozen.upload(KEY, SFT_SAMPLE)
    file_id = frozen.run(run_id)["run"]["file_id"]
    frozen.new_records()  # the file-ready event is lost, and so is every re-announcement of it
    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "0")

    for _ in range(8):
        frozen.new_records()
        frozen.tick()
        if frozen.run(run_id)["run"]["stage"] == "FAILED":
            break

    run = frozen.run(run_id)["run"]
    assert run["stage"] == "FAILED" and run["error"]["code"] == "Stuck", run
    assert [entry["stage"] for entry in frozen.history(run_id)][-2:] == ["cleaning-up", "failed"]
    assert gone(frozen, f"/api/v1/files/{file_id}"), "the stuck run's file does not stay against the quota"
    assert run["owns"] == []


def test_an_unknown_run_id_in_the_ending_markers_is_ignored(frozen: Pipeline) -> None:
    frozen.put("ending/not a run id", b"")
    assert frozen.tick()["ended"] == []


# --- the backstop: the timer's audit ------------------------------------------------------------------------------


def test_the_audit_undoes_what_lands_for_a_run_after_its_end(frozen: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAILIAN_FLOW_AUDIT_EVERY", "0")
    frozen.put(MARKER, MARKER_BODY)
    frozen.deliver_new()
    run_id = frozen.run_for_key(MARKER)["run_id"]
    status, body = frozen.api("POST", f"/runs/{run_id}/cancel")
    assert status == 200 and body["run"]["stage"] == "CANCELED", body
    # An actor past every lease creates the run's import after all (its second claim's name).
    storage = {"bucket_name": "flow-test", "object_key": "models/lora/"}
    body = {"model_name": "qwen3-8b", "storage_info": storage, "display_name": f"bf-{run_id}-1-g2", "source": "oss"}
    frozen.bailian("POST", "/api/v1/custom_models/import", body)
    advance(frozen, 120)  # it has ended, so it may be deleted

    audited = []
    for _ in range(6):  # one family a tick: fine-tunes, then imports, ...
        audited += frozen.tick()["audited"]
        if audited:
            break

    assert imports(frozen) == [], audited
    assert any(line.startswith("audit: deleted import") for line in changes(frozen, run_id))
    assert frozen.run(run_id)["run"]["stage"] == "CANCELED"


def test_the_audit_deletes_a_deployment_that_lands_for_a_run_after_its_end(
    frozen: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A base-model deployment whose creates Bailian refuses for now: the run waits at its `deploying` intent.
    frozen.fault(method="POST", path="/api/v1/deployments", status=503, code="ServiceUnavailable", times=100)
    status, body = frozen.api("POST", "/runs", {"deploy": MU})
    assert status in (200, 201, 202), body
    run_id = body["run"]["run_id"]
    with pytest.raises(Exception):  # noqa: B017 - the refused create escapes for FC to retry
        frozen.deliver_new()
    suffix = frozen.run(run_id)["run"]["deploy_suffix"]
    assert suffix
    status, body = frozen.api("POST", f"/runs/{run_id}/cancel")
    assert status == 200 and body["run"]["stage"] == "CANCELED", body
    frozen.clear_faults()
    # The create of an actor past every lease lands after all: the deployment names no run, only its suffix.
    made = frozen.bailian("POST", "/api/v1/deployments", {**DEPLOY_BODY, "suffix": suffix})["output"]
    monkeypatch.setenv("BAILIAN_FLOW_AUDIT_EVERY", "0")

    audited = []
    for _ in range(8):  # one family a tick
        audited += frozen.tick()["audited"]
        if audited:
            break

    assert audited == [f"{run_id}: deleted deployment {made['deployed_model']}"], audited
    assert frozen.bailian("GET", f"/api/v1/deployments/{made['deployed_model']}")["output"]["status"] == "DELETING"
    assert any(line.startswith("audit: deleted deployment") for line in changes(frozen, run_id))
    assert frozen.run(run_id)["run"]["stage"] == "CANCELED"
    assert frozen.object_count(f"suffixes/{suffix}/") == 0, "the note goes with its deployment"


def test_the_audit_leaves_a_deployment_whose_suffix_no_run_or_several_runs_noted(
    frozen: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs sent the same marker suffix (their creates refused for now, then both canceled): which of them made a
    # deployment with it is not known. And someone else's deployment has a suffix of our form that no run noted.
    frozen.fault(method="POST", path="/api/v1/deployments", status=503, code="ServiceUnavailable", times=100)
    for name in ("first", "second"):
        status, body = frozen.api("POST", "/runs", {"deploy": {**MU, "suffix": "shared1", "name": name}})
        assert status in (200, 201, 202), body
        with pytest.raises(Exception):  # noqa: B017 - the refused create escapes for FC to retry
            frozen.deliver_new()
        status, body = frozen.api("POST", f"/runs/{body['run']['run_id']}/cancel")
        assert status == 200 and body["run"]["stage"] == "CANCELED", body
    frozen.clear_faults()
    assert frozen.object_count("suffixes/shared1/") == 2
    reused = frozen.bailian("POST", "/api/v1/deployments", {**DEPLOY_BODY, "suffix": "shared1"})["output"]
    stranger = frozen.bailian("POST", "/api/v1/deployments", {**DEPLOY_BODY, "suffix": "fabcdefg"})["output"]
    monkeypatch.setenv("BAILIAN_FLOW_AUDIT_EVERY", "0")

    audited = []
    for _ in range(8):
        audited += frozen.tick()["audited"]

    assert audited == []
    for made in (reused, stranger):
        assert frozen.bailian("GET", f"/api/v1/deployments/{made['deployed_model']}")["output"]["status"] != "DELETING"
