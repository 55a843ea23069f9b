"""The webhook function's REST API, called exactly as FC's HTTP trigger calls it, over real runs."""

from __future__ import annotations

import asyncio
import json

import pytest
from harness import API_TOKEN, SFT_SAMPLE, Pipeline, http_json

KEY = "datasets/api/train.jsonl"


def _failed_and_done_runs(pipeline: Pipeline) -> tuple[str, str]:
    failed_id = pipeline.upload("datasets/api/failed.jsonl", b"not json\n")
    done_id = pipeline.upload(KEY, SFT_SAMPLE)
    pipeline.pump()
    assert pipeline.run(failed_id)["run"]["stage"] == "FAILED"
    assert pipeline.run(done_id)["run"]["stage"] == "DONE"
    return failed_id, done_id


# --- authentication -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token-9c2e", API_TOKEN + "x", ""])
@pytest.mark.parametrize(("method", "path"), [("GET", "/runs"), ("POST", "/runs"), ("GET", "/runs/r0123456789abcde")])
def test_a_missing_or_wrong_token_is_refused_without_echoing_it(
    pipeline: Pipeline, token: str | None, method: str, path: str
) -> None:
    pipeline.put(KEY, SFT_SAMPLE)

    status, body = pipeline.api(method, path, {"oss_key": KEY} if method == "POST" else None, token=token)

    assert status == 401
    assert body["error"]["code"] == "Unauthorized"
    text = json.dumps(body)
    assert API_TOKEN not in text
    if token:
        assert token not in text
    assert pipeline.created()["files"] == 0
    assert pipeline.object_count("runs/") == 0, "nothing was started"


def test_without_a_configured_token_the_api_is_off(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAILIAN_FLOW_API_TOKEN")

    status, body = pipeline.api("GET", "/runs")
    assert status == 503
    assert body["error"]["code"] == "NotConfigured"
    # Not even a token that used to be right opens it.
    assert pipeline.api("POST", "/runs", {"oss_key": KEY})[0] == 503
    # Health needs no token and stays up.
    assert pipeline.api("GET", "/health", token=None) == (200, {"status": "ok"})


def test_health_needs_no_token(pipeline: Pipeline) -> None:
    assert pipeline.api("GET", "/health", token=None) == (200, {"status": "ok"})
    assert pipeline.api("GET", "/health", token="wrong") == (200, {"status": "ok"})


# --- reading runs ---------------------------------------------------------------------------------------------


def test_list_runs_and_filter_by_stage(pipeline: Pipeline) -> None:
    failed_id, done_id = _failed_and_done_runs(pipeline)

    status, body = pipeline.api("GET", "/runs")
    assert status == 200
    # Newest first: the done run was uploaded after the failed one.
    assert [(run["run_id"], run["stage"]) for run in body["runs"]] == [(done_id, "DONE"), (failed_id, "FAILED")]
    assert body["next"] is None

    status, body = pipeline.api("GET", "/runs?stage=DONE")
    assert status == 200
    assert [run["run_id"] for run in body["runs"]] == [done_id]

    status, body = pipeline.api("GET", "/runs?stage=FAILED")
    assert [run["run_id"] for run in body["runs"]] == [failed_id]

    status, body = pipeline.api("GET", "/runs?limit=1")
    assert status == 200 and [run["run_id"] for run in body["runs"]] == [done_id]
    status, body = pipeline.api("GET", f"/runs?limit=1&after={body['next']}")
    assert status == 200 and [run["run_id"] for run in body["runs"]] == [failed_id]

    status, body = pipeline.api("GET", "/runs?limit=0")
    assert status == 400 and body["error"]["code"] == "InvalidParameter"

    status, body = pipeline.api("GET", "/runs?limit=many")
    assert status == 400 and body["error"]["code"] == "InvalidParameter"


def test_runs_carry_their_kind_and_filter_by_it(pipeline: Pipeline) -> None:
    failed_id, done_id = _failed_and_done_runs(pipeline)

    status, body = pipeline.api("GET", "/runs?kind=fine-tune")
    assert status == 200
    assert {run["run_id"]: run["kind"] for run in body["runs"]} == {done_id: "fine-tune", failed_id: "fine-tune"}

    status, body = pipeline.api("GET", "/runs?kind=batch")
    assert status == 200 and body["runs"] == []

    status, body = pipeline.api("GET", "/runs?kind=bogus")
    assert status == 400 and body["error"]["code"] == "InvalidParameter"


def test_show_run_gives_state_and_full_history(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    pipeline.pump(run_id)

    status, body = pipeline.api("GET", f"/runs/{run_id}")

    assert status == 200
    run, history = body["run"], body["history"]
    assert run["run_id"] == run_id and run["stage"] == "DONE"
    assert run["source"] == {
        "bucket": "flow-test",
        "key": KEY,
        "etag": pipeline.head_etag(KEY).strip('"').upper(),
        "size": len(SFT_SAMPLE),
        "file_id": None,
    }
    assert [entry["seq"] for entry in history] == list(range(len(history)))
    assert history[0]["stage"] == "received" and history[-1]["stage"] == "done"
    assert all(entry["changed"] and entry["at"].endswith("Z") for entry in history)
    assert run["seq"] == history[-1]["seq"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/runs/r0000000000000000"),
        ("POST", "/runs/r0000000000000000/cancel"),
        ("POST", "/runs/r0000000000000000/retry"),
        ("GET", "/nowhere"),
        ("GET", "/runs/../active"),
    ],
)
def test_unknown_runs_and_routes_are_404(pipeline: Pipeline, method: str, path: str) -> None:
    status, body = pipeline.api(method, path)

    assert status == 404, body
    assert body["error"]["code"] == "NotFound"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/runs", "GET, POST"), ("GET", "/runs/r0000000000000000/cancel", "POST")],
)
def test_a_known_route_with_another_method_is_405_naming_the_allowed_ones(
    pipeline: Pipeline, method: str, path: str, allowed: str
) -> None:
    status, body = pipeline.api(method, path)

    assert status == 405, body
    assert body["error"]["code"] == "MethodNotAllowed"
    assert allowed in body["error"]["message"]


# --- starting runs --------------------------------------------------------------------------------------------


def test_start_from_an_object_then_driven_by_its_requested_event(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    pipeline.new_records()  # the upload's own event is lost: only the API starts this run

    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": {"on_success": {"capacity": 2}}})

    assert status == 202, body
    assert body["created"] is True
    run = body["run"]
    assert run["stage"] == "requested"
    assert run["source"]["key"] == KEY
    assert run["settings"]["on_success"]["capacity"] == 2
    records = pipeline.new_records()
    assert [pipeline.targets(r) for r in records if r["oss"]["object"]["key"].endswith("-requested.json")] == [
        ["on_upload"]
    ]
    for record in records:
        pipeline.deliver(record)
    done = pipeline.pump(run["run_id"])
    assert done["stage"] == "DONE", done
    deployment = pipeline.bailian("GET", f"/api/v1/deployments/{done['deployed_model']}")["output"]
    assert deployment["capacity"] == 2, "the API's settings reached the deployment"


def _registered_file(pipeline: Pipeline) -> str:
    from bailian_flow.client import BailianClient

    async def upload() -> str:
        async with BailianClient(api_key="sk-test-pipeline", base_url=pipeline.url) as client:
            return (await client.files.upload(SFT_SAMPLE, filename="given.jsonl")).file_id

    return asyncio.run(upload())


def test_start_from_a_registered_file(pipeline: Pipeline) -> None:
    file_id = _registered_file(pipeline)

    status, body = pipeline.api("POST", "/runs", {"file_id": file_id})

    assert status == 202, body
    run = body["run"]
    assert (run["stage"], run["file_id"], run["source"]["file_id"]) == ("file-ready", file_id, file_id)
    done = pipeline.pump(run["run_id"])
    assert done["stage"] == "DONE", done
    job = pipeline.fine_tune(done["job_id"])
    assert job["training_file_ids"] == [file_id]
    assert pipeline.created()["files"] == 1, "no second upload"


@pytest.mark.parametrize("kind", ["oss_key", "file_id"])
def test_starting_twice_returns_the_same_run(pipeline: Pipeline, kind: str) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    source = {"oss_key": KEY} if kind == "oss_key" else {"file_id": _registered_file(pipeline)}

    first = pipeline.api("POST", "/runs", source)
    second = pipeline.api("POST", "/runs", source)

    assert (first[0], first[1]["created"]) == (202, True)
    assert (second[0], second[1]["created"]) == (200, False)
    assert second[1]["run"]["run_id"] == first[1]["run"]["run_id"]
    assert len(pipeline.history(first[1]["run"]["run_id"])) == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param("not json", "InvalidJSON", id="not-json"),
        pytest.param("[1, 2]", "InvalidJSON", id="not-an-object"),
        pytest.param("{}", "InvalidParameter", id="no-source"),
        pytest.param('{"oss_key": 5}', "InvalidParameter", id="key-not-a-string"),
        pytest.param('{"oss_key": "datasets/api/train.jsonl", "settings": "fast"}', "InvalidParameter", id="settings"),
        pytest.param(
            '{"oss_key": "datasets/api/train.jsonl", "settings": {"modle": "x"}}', "InvalidSettings", id="typo"
        ),
        pytest.param('{"file_id": "f", "settings": {"on_success": {"capacity": 0}}}', "InvalidSettings", id="cap"),
    ],
)
def test_an_invalid_start_request_is_400(pipeline: Pipeline, raw: str, code: str) -> None:
    pipeline.put(KEY, SFT_SAMPLE)

    status, body = pipeline.api("POST", "/runs", raw_body=raw)

    assert status == 400, body
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert pipeline.object_count("runs/") == 0


def test_starting_from_a_missing_object_is_404(pipeline: Pipeline) -> None:
    status, body = pipeline.api("POST", "/runs", {"oss_key": "datasets/api/absent.jsonl"})

    assert status == 404
    assert "datasets/api/absent.jsonl" in body["error"]["message"]


# --- cancel, retry, callbacks ----------------------------------------------------------------------------------


def test_cancel_and_retry_refuse_runs_in_the_wrong_stage(pipeline: Pipeline) -> None:
    failed_id, done_id = _failed_and_done_runs(pipeline)

    status, body = pipeline.api("POST", f"/runs/{done_id}/cancel")
    assert (status, body["error"]["code"]) == (409, "Conflict")
    assert "DONE" in body["error"]["message"]
    assert pipeline.api("POST", f"/runs/{failed_id}/cancel")[0] == 409

    status, body = pipeline.api("POST", f"/runs/{done_id}/retry")
    assert (status, body["error"]["code"]) == (409, "Conflict")

    running = pipeline.upload("datasets/api/running.jsonl", SFT_SAMPLE)
    status, body = pipeline.api("POST", f"/runs/{running}/retry")
    assert status == 409 and "FAILED" in body["error"]["message"]

    # The refusals changed nothing.
    assert pipeline.run(done_id)["run"]["stage"] == "DONE"
    assert pipeline.run(failed_id)["run"]["stage"] == "FAILED"
    assert pipeline.run(running)["run"]["stage"] == "file-ready"


def test_cancel_before_training_cancels_the_run_only(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    assert pipeline.run(run_id)["run"]["stage"] == "file-ready"

    status, body = pipeline.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200 and body["run"]["stage"] == "CANCELED"
    pipeline.pump(timeout=10)  # the file-ready event arrives late: it must not start a job
    assert pipeline.run(run_id)["run"]["stage"] == "CANCELED"
    assert pipeline.created()["fine_tunes"] == 0


def test_a_callback_polls_the_run_now(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    pipeline.deliver_new()
    assert pipeline.run(run_id)["run"]["stage"] == "training"
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 3600})

    status, body = pipeline.api("POST", "/callbacks/fine-tune", {"run_id": run_id})

    assert status == 200, body
    assert body["kind"] == "fine-tune"
    assert body["run"]["stage"] == "job-succeeded", "polled without waiting for the timer"
    assert pipeline.run(run_id)["run"]["finetuned_output"]


@pytest.mark.parametrize(("body", "status"), [({}, 400), ({"run_id": 5}, 400), ({"run_id": "r0000000000000000"}, 404)])
def test_a_callback_without_a_known_run_is_refused(pipeline: Pipeline, body: dict[str, object], status: int) -> None:
    assert pipeline.api("POST", "/callbacks/fine-tune", body)[0] == status


def test_a_bad_sidecar_of_a_started_object_fails_its_run_not_the_request(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"modle: qwen3-8b\n")
    pipeline.put(KEY, SFT_SAMPLE)

    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY})

    assert status == 202, body
    run = body["run"]
    assert run["stage"] == "FAILED"
    assert (run["error"]["code"], run["error"]["field"]) == ("InvalidSettings", "modle")
    assert run["error"]["object"] == KEY + ".flow.yaml"
