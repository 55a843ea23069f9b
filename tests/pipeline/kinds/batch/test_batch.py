"""Batch inference runs end to end through the real functions and the emulator's batch service."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from harness import Pipeline, http_json

KEY = "batches/team/questions.jsonl"
CHAT = "/v1/chat/completions"


def request_line(number: int, model: str = "qwen-plus", custom_id: str | None = None, **overrides: Any) -> bytes:
    line: dict[str, Any] = {
        "custom_id": custom_id or f"req-{number}",
        "method": "POST",
        "url": CHAT,
        "body": {"model": model, "messages": [{"role": "user", "content": f"question {number}"}]},
    }
    line.update(overrides)
    return json.dumps(line).encode() + b"\n"


def batch_input(count: int, models: tuple[str, ...] = ("qwen-plus",)) -> bytes:
    return b"".join(request_line(n, models[n % len(models)]) for n in range(1, count + 1))


def results(pipeline: Pipeline, run_id: str, name: str) -> bytes:
    data = pipeline.get(f"results/team/questions/{run_id}/{name}")
    assert data is not None, name
    return data


def answered_ids(pipeline: Pipeline, run_id: str, name: str = "output.jsonl") -> list[str]:
    return [json.loads(line)["custom_id"] for line in results(pipeline, run_id, name).splitlines()]


def test_a_small_input_is_answered_in_order(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, batch_input(5))

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert run["kind"] == "batch"
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 6)]
    first = json.loads(results(pipeline, run_id, "output.jsonl").splitlines()[0])
    assert first["response"]["status_code"] == 200
    assert results(pipeline, run_id, "errors.jsonl") == b""
    summary = json.loads(results(pipeline, run_id, "summary.json"))
    assert (summary["total"], summary["completed"], summary["failed"]) == (5, 5, 0)
    assert summary["input_tokens"] > 0 and summary["output_tokens"] > 0
    assert summary["cost"]["amount"] > 0
    assert pipeline.created()["batches"] == 1
    # The service's copies (input, output) are deleted once the results are in the bucket.
    assert pipeline_live(pipeline)["compat_files"] == 0
    kinds = {run["run_id"]: run["kind"] for run in pipeline.runs()}
    assert kinds[run_id] == "batch"
    status, body = pipeline.api("GET", "/runs?kind=batch")
    assert status == 200 and [r["run_id"] for r in body["runs"]] == [run_id]


def service_batch(pipeline: Pipeline, batch_id: str) -> dict[str, Any]:
    url = f"{pipeline.url}/compatible-mode/v1/batches/{batch_id}"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sk-test-pipeline"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def pipeline_live(pipeline: Pipeline) -> dict[str, int]:
    return dict(http_json(f"{pipeline.url}/_emulator/state")["live"])


def test_mixed_models_over_many_shards_come_back_in_input_order(batch_pipeline: Pipeline) -> None:
    data = batch_input(130, models=("qwen-plus", "qwen-turbo"))
    run_id = batch_pipeline.upload(KEY, data)

    run = batch_pipeline.pump(run_id, timeout=120)

    assert run["stage"] == "DONE", run
    shards = run["batch"]["shards"]
    # 65 lines per model, 40 per shard: two shards per model, each of one model.
    assert sorted((shard["model"], shard["lines"]) for shard in shards) == [
        ("qwen-plus", 25),
        ("qwen-plus", 40),
        ("qwen-turbo", 25),
        ("qwen-turbo", 40),
    ]
    assert answered_ids(batch_pipeline, run_id) == [f"req-{n}" for n in range(1, 131)]
    models = [
        json.loads(line)["response"]["body"]["model"]
        for line in results(batch_pipeline, run_id, "output.jsonl").splitlines()
    ]
    assert models == ["qwen-plus" if n % 2 == 0 else "qwen-turbo" for n in range(1, 131)]
    assert batch_pipeline.created()["batches"] == 4


def test_a_bad_line_fails_the_run_naming_it_and_submits_nothing(batch_pipeline: Pipeline) -> None:
    lines = [request_line(n) for n in range(1, 101)]
    lines[69] = request_line(70, url="/v1/embeddings")
    run_id = batch_pipeline.upload(KEY, b"".join(lines))

    run = batch_pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert (run["error"]["object"], run["error"]["line"], run["error"]["field"]) == (KEY, 70, "url")
    assert batch_pipeline.created()["compat_files"] == 0


def test_an_input_mixing_thinking_modes_fails_naming_the_line_and_submits_nothing(batch_pipeline: Pipeline) -> None:
    # One thinking mode per input file (the batch page): line 60 turns thinking on where line 1 turned it off.
    lines = [request_line(n) for n in range(1, 101)]
    lines = [line.replace(b'"messages"', b'"enable_thinking": false, "messages"', 1) for line in lines]
    lines[59] = lines[59].replace(b'"enable_thinking": false', b'"enable_thinking": true')
    run_id = batch_pipeline.upload(KEY, b"".join(lines))

    run = batch_pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert (run["error"]["object"], run["error"]["line"]) == (KEY, 60), run
    assert "enable_thinking" in (run["error"]["field"] or "") + run["error"]["reason"], run
    assert batch_pipeline.created()["compat_files"] == 0


def test_a_custom_id_repeated_in_another_shard_fails_the_run(batch_pipeline: Pipeline) -> None:
    lines = [request_line(n) for n in range(1, 101)]
    lines[89] = request_line(90, custom_id="req-3")
    run_id = batch_pipeline.upload(KEY, b"".join(lines))

    run = batch_pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert (run["error"]["line"], run["error"]["field"]) == (90, "custom_id")
    assert "line 3" in run["error"]["reason"]
    assert batch_pipeline.created()["batches"] == 0


def test_failed_lines_are_reported_in_errors_jsonl(pipeline: Pipeline) -> None:
    pipeline.script("batch", "PARTIAL:0.3")
    run_id = pipeline.upload(KEY, batch_input(40))

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    answered = answered_ids(pipeline, run_id)
    failed = answered_ids(pipeline, run_id, "errors.jsonl")
    assert failed and answered
    assert sorted(answered + failed, key=lambda cid: int(cid.split("-")[1])) == [f"req-{n}" for n in range(1, 41)]
    assert failed == sorted(failed, key=lambda cid: int(cid.split("-")[1]))
    summary = json.loads(results(pipeline, run_id, "summary.json"))
    assert (summary["completed"], summary["failed"]) == (len(answered), len(failed))


def test_an_expired_shard_is_resubmitted(batch_pipeline: Pipeline) -> None:
    batch_pipeline.script("batch", "EXPIRED")
    run_id = batch_pipeline.upload(KEY, batch_input(60))

    run = batch_pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    assert answered_ids(batch_pipeline, run_id) == [f"req-{n}" for n in range(1, 61)]
    generations = sorted((shard["root"], shard["generation"], shard["status"]) for shard in run["batch"]["shards"])
    assert generations == [(0, 1, "expired"), (0, 2, "completed"), (1, 1, "completed")]


def test_lines_never_run_are_reported_once_the_resubmission_limit_is_reached(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"resubmit_limit: 1\n")
    pipeline.script("batch", "EXPIRED", count=2)
    run_id = pipeline.upload(KEY, batch_input(10))

    run = pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    assert results(pipeline, run_id, "output.jsonl") == b""
    errors = [json.loads(line) for line in results(pipeline, run_id, "errors.jsonl").splitlines()]
    assert [e["custom_id"] for e in errors] == [f"req-{n}" for n in range(1, 11)]
    assert {e["error"]["code"] for e in errors} == {"not_run"}
    assert pipeline.created()["batches"] == 2


def test_five_concurrent_deliveries_of_the_upload_make_one_set_of_shards(batch_pipeline: Pipeline) -> None:
    batch_pipeline.put(KEY, batch_input(100))

    batch_pipeline.pump(duplicates=5, timeout=120)

    run = batch_pipeline.run_for_key(KEY)
    assert run["stage"] == "DONE", run
    # 100 lines, 40 per shard: three shards, each one file and one batch, whatever the duplicates did.
    assert batch_pipeline.created()["batches"] == 3
    assert len(run["batch"]["shards"]) == 3
    assert answered_ids(batch_pipeline, run["run_id"]) == [f"req-{n}" for n in range(1, 101)]


@pytest.mark.parametrize("path", ["/compatible-mode/v1/files", "/compatible-mode/v1/batches"])
def test_a_create_whose_answer_is_lost_is_found_not_repeated(pipeline: Pipeline, path: str) -> None:
    pipeline.fault(method="POST", path=path, drop="after", times=1)
    run_id = pipeline.upload(KEY, batch_input(5))

    run = pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    assert pipeline.created()["batches"] == 1
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 6)]


class CallbackRelay:
    """Bailian's side of the callback: an HTTP server handing each POST to the webhook function, as FC would."""

    def __init__(self, pipeline: Pipeline, port: int) -> None:
        calls: list[tuple[str, int]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                status, _ = pipeline.api("POST", self.path, token=None, raw_body=body)
                calls.append((self.path, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.calls = calls
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_finish_callbacks_drive_the_run_without_the_timer(emulator_reset: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    pipeline = Pipeline(
        emulator_reset.url,
        monkeypatch,
        BAILIAN_FLOW_CALLBACK_URL=f"http://127.0.0.1:{port}",
        BAILIAN_FLOW_CALLBACK_SECRET="callback-secret-for-tests",
    )
    relay = CallbackRelay(pipeline, port)
    try:
        run_id = pipeline.upload(KEY, batch_input(5))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pipeline.run(run_id)["run"]["stage"] != "DONE":
            for record in pipeline.new_records():  # OSS events only: never a tick
                pipeline.deliver(record)
            time.sleep(0.1)
        assert pipeline.run(run_id)["run"]["stage"] == "DONE"
        assert relay.calls and all(status == 200 for _, status in relay.calls)
        assert relay.calls[0][0].startswith(f"/callbacks/batch/{run_id}/")
    finally:
        relay.close()


def test_a_callback_that_never_comes_leaves_the_timer_to_poll(
    emulator_reset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    pipeline = Pipeline(
        emulator_reset.url, monkeypatch, BAILIAN_FLOW_CALLBACK_URL=nobody, BAILIAN_FLOW_CALLBACK_SECRET="s3cret"
    )
    run_id = pipeline.upload(KEY, batch_input(5))

    assert pipeline.pump(run_id)["stage"] == "DONE"
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 6)]


def test_a_forged_callback_changes_nothing(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, batch_input(5))
    history = pipeline.run(run_id)["history"]

    for path in (
        f"/callbacks/batch/{run_id}/{'0' * 40}",
        f"/callbacks/batch/{run_id}/deadbeef",
        "/callbacks/batch/r0000000000000000/abc",
        f"/callbacks/batch/{run_id}",
    ):
        status, body = pipeline.api("POST", path, token=None, raw_body='{"status": "completed"}')
        assert status in (401, 404), (path, status, body)

    assert pipeline.run(run_id)["history"] == history


def test_cancel_mid_way_stops_the_batches(batch_pipeline: Pipeline) -> None:
    # Each batch works an emulated hour, so the upload's own invocation cannot finish the run before the cancel (a
    # fast one did: collecting no longer re-reads the input).
    batch_pipeline.script("batch", "SLOW:3600", count=3)
    run_id = batch_pipeline.upload(KEY, batch_input(120))
    submitted = batch_pipeline.created()["batches"]
    assert submitted >= 1

    status, body = batch_pipeline.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200, body
    assert body["run"]["stage"] == "CANCELED"
    for shard in body["run"]["batch"]["shards"]:
        if shard["batch_id"]:
            got = service_batch(batch_pipeline, shard["batch_id"])
            assert got["status"] in ("cancelling", "cancelled", "completed"), got
    batch_pipeline.pump()
    # Nothing goes on after the cancel: no more batches, no results.
    assert batch_pipeline.created()["batches"] == submitted
    assert batch_pipeline.run(run_id)["run"]["stage"] == "CANCELED"
    assert batch_pipeline.get(f"results/team/questions/{run_id}/output.jsonl") is None
    assert pipeline_live(batch_pipeline)["compat_files"] == 0  # the run's files are gone with it


def test_a_cancel_after_a_shard_ended_uncollected_deletes_its_answers_too(batch_pipeline: Pipeline) -> None:
    # Each batch works an emulated hour: the upload's own invocation cannot see them end and carry the run on, however
    # slow the machine (then the run could be DONE before the cancel).
    batch_pipeline.script("batch", "SLOW:3600", count=3)
    run_id = batch_pipeline.upload(KEY, batch_input(120))
    # The submitted shards finish on Bailian (answer files and all) before any tick collects them.
    http_json(f"{batch_pipeline.url}/_emulator/clock", "POST", {"advance": 7200})
    shards = batch_pipeline.run(run_id)["run"]["batch"]["shards"]
    ended = [service_batch(batch_pipeline, shard["batch_id"]) for shard in shards if shard["batch_id"]]
    assert ended and all(got["status"] == "completed" and got["output_file_id"] for got in ended), ended

    status, body = batch_pipeline.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200, body
    assert body["run"]["stage"] == "CANCELED"
    assert pipeline_live(batch_pipeline)["compat_files"] == 0


def test_a_run_started_through_the_api_takes_its_settings(pipeline: Pipeline) -> None:
    pipeline.put(KEY, batch_input(6))
    bad, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": {"completion_window": "2h"}})
    assert bad == 400 and body["error"]["code"] == "InvalidSettings", body

    status, body = pipeline.api(
        "POST", "/runs", {"oss_key": KEY, "settings": {"model": "qwen-turbo", "metadata": {"ds_name": "nightly"}}}
    )

    assert status == 202, body
    run_id = body["run"]["run_id"]
    assert body["run"]["kind"] == "batch"
    assert pipeline.pump(run_id)["stage"] == "DONE"
    output = [json.loads(line) for line in results(pipeline, run_id, "output.jsonl").splitlines()]
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, 7)]
    assert {line["response"]["body"]["model"] for line in output} == {"qwen-turbo"}  # the override won
    (batch,) = [service_batch(pipeline, shard["batch_id"]) for shard in pipeline.run(run_id)["run"]["batch"]["shards"]]
    assert batch["metadata"]["ds_name"] == f"nightly bf-{run_id}-a1-s0-g1"


def test_embedding_requests_chosen_by_the_sidecar(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"endpoint: /v1/embeddings\ncompletion_window: 2d\n")
    lines = [
        json.dumps(
            {
                "custom_id": f"e{n}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "text-embedding-v3", "input": f"text {n}"},
            }
        ).encode()
        + b"\n"
        for n in range(8)
    ]
    run_id = pipeline.upload(KEY, b"".join(lines))

    assert pipeline.pump(run_id)["stage"] == "DONE"
    output = [json.loads(line) for line in results(pipeline, run_id, "output.jsonl").splitlines()]
    assert [line["custom_id"] for line in output] == [f"e{n}" for n in range(8)]
    assert output[0]["response"]["body"]["object"] == "list"
    summary = json.loads(results(pipeline, run_id, "summary.json"))
    assert summary["input_tokens"] > 0 and summary["cost"]["unpriced_models"] == ["text-embedding-v3"]


def test_an_unknown_setting_fails_the_run_naming_it(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"endpiont: /v1/embeddings\n")
    run_id = pipeline.upload(KEY, batch_input(3))

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED"
    assert (run["error"]["code"], run["error"]["field"]) == ("InvalidSettings", "endpiont")
    assert pipeline.created()["batches"] == 0


def test_a_bad_line_40001_fails_before_anything_is_submitted(pipeline: Pipeline) -> None:
    lines = [request_line(n) for n in range(1, 40_001)]
    lines.append(b'{"custom_id": "req-40001", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n')
    run_id = pipeline.upload(KEY, b"".join(lines))

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED", run
    assert (run["error"]["line"], run["error"]["field"]) == (40_001, "method")
    assert (pipeline.created()["compat_files"], pipeline.created()["batches"]) == (0, 0)


def test_a_batch_input_whose_event_never_came_is_adopted(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "0")
    assert pipeline.tick()["adopted"] == [], "the first tick only starts watching"
    time.sleep(2.1)  # listings have whole seconds; the cursor keeps one second of overlap
    pipeline.put(KEY, batch_input(4))
    pipeline.new_records()  # the upload's event is lost for good

    (adopted,) = pipeline.tick()["adopted"]

    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "600")
    run = pipeline.pump(adopted)
    assert (run["kind"], run["stage"]) == ("batch", "DONE")
    assert answered_ids(pipeline, adopted) == [f"req-{n}" for n in range(1, 5)]


def test_a_failed_batch_run_is_retried_once_its_settings_are_fixed(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"endpoint: /v1/embeddings\n")  # wrong: the lines are chat requests
    run_id = pipeline.upload(KEY, batch_input(4))
    run = pipeline.pump(run_id)
    assert run["stage"] == "FAILED" and run["error"]["field"] == "url", run

    pipeline.put(KEY + ".flow.yaml", b"endpoint: /v1/chat/completions\n")
    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")

    assert status == 202, body
    run = pipeline.pump(run_id)
    assert (run["stage"], run["attempt"]) == ("DONE", 2)
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 5)]
    (shard,) = run["batch"]["shards"]
    assert service_batch(pipeline, shard["batch_id"])["metadata"]["ds_name"] == f"bf-{run_id}-a2-s0-g1"


def test_a_batch_runs_retry_checks_the_settings_in_its_body_as_a_batchs(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"endpoint: /v1/embeddings\n")
    run_id = pipeline.upload(KEY, batch_input(4))
    assert pipeline.pump(run_id)["stage"] == "FAILED"

    fine_tune = pipeline.api("POST", f"/runs/{run_id}/retry", {"settings": {"training_type": "sft"}})
    status, body = pipeline.api("POST", f"/runs/{run_id}/retry", {"settings": {"endpoint": CHAT}})

    assert fine_tune[0] == 400 and fine_tune[1]["error"]["code"] == "InvalidSettings", fine_tune
    assert status == 202, body
    run = pipeline.pump(run_id)
    assert (run["stage"], run["attempt"], run["batch"]["settings"]["endpoint"]) == ("DONE", 2, CHAT)


def test_a_shard_past_its_window_sends_only_what_it_did_not_answer_again(pipeline: Pipeline) -> None:
    pipeline.script("batch", "SLOW:172800")  # 48 h of work in a 24 h window
    run_id = pipeline.upload(KEY, batch_input(10))
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 25 * 3600})

    run = pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 11)]
    first, again = sorted(run["batch"]["shards"], key=lambda shard: shard["generation"])
    assert (first["status"], first["completed"]) == ("expired", 4)
    assert (again["generation"], again["lines"], again["status"], again["completed"]) == (2, 6, "completed", 6)
    assert pipeline.created()["batches"] == 2


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (
            b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "q\xff"}}\n',
            None,
            "UTF-8",
        ),
        (b"not json\n", None, "not JSON"),
        (b'["a list"]\n', None, "JSON object"),
        (
            b'{"method": "POST", "url": "/v1/chat/completions", "body": {"model": "qwen-plus"}}\n',
            "custom_id",
            "custom_id",
        ),
        (b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "body.model", "model"),
        (b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": "hi"}\n', "body", "body"),
    ],
)
def test_each_rule_names_line_and_field(pipeline: Pipeline, line: bytes, field: str | None, reason: str) -> None:
    run_id = pipeline.upload(KEY, request_line(1) + request_line(2) + line)

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED", run
    assert (run["error"]["object"], run["error"]["line"], run["error"]["field"]) == (KEY, 3, field)
    assert reason in run["error"]["reason"]


def test_a_line_over_6_mb_fails_the_run(pipeline: Pipeline) -> None:
    big = json.loads(request_line(2))
    big["body"]["messages"] = [{"role": "user", "content": "x" * (6 * 1024 * 1024 + 10)}]
    run_id = pipeline.upload(KEY, request_line(1) + json.dumps(big).encode() + b"\n" + request_line(3))

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED", run
    assert run["error"]["line"] == 2 and "more than 6291456" in run["error"]["reason"]


def test_a_cancel_while_a_batch_is_being_created_undoes_it(pipeline: Pipeline) -> None:
    pipeline.fault(method="POST", path="/compatible-mode/v1/batches", latency=2.0, times=1)
    # The blank line keeps the file's upload in the submit (test_batch_ahead.py), so that the cancel comes while the
    # submit's file is not recorded yet and the batch create goes through: the submit undoes both.
    pipeline.put(KEY, batch_input(5) + b"\n")
    (record,) = pipeline.new_records()
    with ThreadPoolExecutor(max_workers=1) as pool:
        delivery = pool.submit(pipeline.deliver, record)
        deadline = time.monotonic() + 10
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            runs = [r for r in pipeline.runs() if r["source"].get("key") == KEY]
            if runs and runs[0]["stage"] == "batch-submitting" and runs[0]["batch"]["shards"][0]["file_id"] is None:
                run = runs[0]
                break
            time.sleep(0.02)
        assert run, "the delivery never reached the submission"
        time.sleep(0.5)  # the file is up by now; the batch create waits on the fault's latency
        status, body = pipeline.api("POST", f"/runs/{run['run_id']}/cancel")
        delivery.result()

    assert status == 200, body
    history = [entry["changed"] for entry in pipeline.run(run["run_id"])["history"]]
    assert any(changed.startswith("compensated: canceled batch") for changed in history), history
    assert pipeline_live(pipeline)["compat_files"] == 0
    assert pipeline.run(run["run_id"])["run"]["batch"]["shards"][0]["batch_id"] is None


def test_a_cancel_finds_the_shard_file_of_a_submission_that_died_unrecorded(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shard's file is uploaded, then the batch create never reaches Bailian and the delivery escapes (FC would
    # retry it): the plan records neither, so only the file's name ties it to the run. (The blank line at the end
    # keeps the upload out of the plan, test_batch_ahead.py: the submit makes the file.)
    pipeline.fault(method="POST", path="/compatible-mode/v1/batches", drop="before", times=1)
    pipeline.put(KEY, batch_input(5) + b"\n")
    with pytest.raises(Exception):  # noqa: B017 - whatever the handler lets escape, FC retries
        pipeline.deliver_new()
    run = pipeline.run_for_key(KEY)
    assert run["batch"]["shards"][0]["file_id"] is None and pipeline_live(pipeline)["compat_files"] == 1
    monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", "0")  # the dead act's lease is over: the cancel finalizes

    status, body = pipeline.api("POST", f"/runs/{run['run_id']}/cancel")

    assert status == 200 and body["run"]["stage"] == "CANCELED", body
    assert pipeline_live(pipeline)["compat_files"] == 0
    assert pipeline.created()["batches"] == 0


def test_runs_beyond_the_parallel_batch_quota_wait_in_line(batch_pipeline: Pipeline) -> None:
    # Three inputs of two shards each: six batches for a service that runs two at once.
    batch_pipeline.script("batch", "SLOW:150", count=6)  # each batch runs 1.5 s: the slots stay taken
    keys = [f"batches/team/part-{n}.jsonl" for n in range(3)]
    for key in keys:
        batch_pipeline.put(key, batch_input(80))
    uploads = batch_pipeline.new_records()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(batch_pipeline.deliver, uploads))  # three runs reach for batch slots at once

    batch_pipeline.pump(timeout=180)

    runs = {run["source"]["key"]: run for run in batch_pipeline.runs()}
    for key in keys:
        assert runs[key]["stage"] == "DONE", runs[key]
        run_id = runs[key]["run_id"]
        got = batch_pipeline.get(f"results/team/{key.split('/')[-1].removesuffix('.jsonl')}/{run_id}/output.jsonl")
        assert got is not None and [json.loads(line)["custom_id"] for line in got.splitlines()] == [
            f"req-{n}" for n in range(1, 81)
        ]
    histories = [batch_pipeline.run(run["run_id"])["history"] for run in runs.values()]
    waited = [h for h in histories if any(entry["stage"] == "waiting" for entry in h)]
    assert waited, "some run met the full quota and queued"
    assert batch_pipeline.created()["batches"] == 6


def test_pending_requests_of_a_model_are_counted_across_runs(pipeline: Pipeline) -> None:
    # Bailian takes 10,000 pending requests per model: two runs of 6,000 qwen-plus requests each must not both be
    # in flight, although the account has slots for two batches.
    pipeline.script("batch", "SLOW:100", count=2)  # the first run's batch holds its requests for a while
    first = pipeline.upload("batches/team/first.jsonl", batch_input(6000))
    assert pipeline.run(first)["run"]["stage"] == "batch-running"

    second = pipeline.upload("batches/team/second.jsonl", batch_input(6000))

    waiting = pipeline.run(second)
    assert waiting["run"]["stage"] == "waiting", waiting["run"]
    assert "other runs' batches hold 6,000 of qwen-plus requests" in waiting["history"][-1]["changed"]
    assert pipeline.created()["batches"] == 1
    assert pipeline.pump(timeout=120)["active"] == 0
    runs = [pipeline.run(run_id)["run"] for run_id in (first, second)]
    assert [run["stage"] for run in runs] == ["DONE", "DONE"]
    held, later = (service_batch(pipeline, run["batch"]["shards"][0]["batch_id"]) for run in runs)
    # The second batch was created only once the first had ended (the service's own times).
    assert later["created_at"] >= held["completed_at"], (held, later)
    assert pipeline.created()["batches"] == 2


def test_an_input_overwritten_mid_run_fails_it_and_leaves_nothing_running_or_stored(batch_pipeline: Pipeline) -> None:
    # 3 shards of 40 lines, 2 batches at once: the third shard is read after the overwrite and fails the run. The
    # first two are scripted slow, so none can finish (and free a slot for the third) before the overwrite lands.
    batch_pipeline.script("batch", "SLOW:3600", count=2)
    run_id = batch_pipeline.upload(KEY, batch_input(120))
    submitted = batch_pipeline.run(run_id)["run"]["batch"]["shards"]
    assert sum(1 for shard in submitted if shard["batch_id"]) == 2
    batch_pipeline.put(KEY, batch_input(30))  # its event is delivered by pump: the new version gets its own run
    http_json(f"{batch_pipeline.url}/_emulator/clock", "POST", {"advance": 3700})  # now the slow two finish

    run = batch_pipeline.pump(run_id, timeout=120)

    assert run["stage"] == "FAILED", run
    assert run["error"]["code"] == "Superseded", run["error"]
    shards = run["batch"]["shards"]
    for shard in shards:
        if shard["batch_id"]:
            got = service_batch(batch_pipeline, shard["batch_id"])
            assert got["status"] not in ("validating", "in_progress", "finalizing"), got
    # What the failed run put on Bailian is gone: its shard inputs and whatever answers it collected.
    made = [
        file_id
        for shard in shards
        for file_id in (shard["file_id"], shard["output_file_id"], shard["error_file_id"])
        if file_id
    ]
    assert made, shards
    for file_id in made:
        url = f"{batch_pipeline.url}/compatible-mode/v1/files/{file_id}"
        request = urllib.request.Request(url, headers={"Authorization": "Bearer sk-test-pipeline"})
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(request, timeout=30)
        assert gone.value.code == 404, file_id
    history = " | ".join(entry["changed"] for entry in batch_pipeline.history(run_id))
    assert "overwritten" in history and "batch" in history, history


def test_a_run_held_back_by_other_runs_requests_is_not_admitted_at_every_free_slot(pipeline: Pipeline) -> None:
    pipeline.script("batch", "SLOW:3000", count=2)  # 30 s of real time: the first run holds its requests
    first = pipeline.upload("batches/team/first.jsonl", batch_input(6000))
    second = pipeline.upload("batches/team/second.jsonl", batch_input(6000))
    assert pipeline.run(second)["run"]["stage"] == "waiting"
    entries = len(pipeline.history(second))

    for _ in range(3):
        pipeline.tick()  # a batch slot is free at every tick, but qwen-plus has no room for 6,000 more

    assert pipeline.run(second)["run"]["stage"] == "waiting"
    assert len(pipeline.history(second)) == entries, pipeline.history(second)[entries:]
    assert pipeline.created()["batches"] == 1
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 4000})
    assert pipeline.pump(timeout=120)["active"] == 0
    assert [pipeline.run(run_id)["run"]["stage"] for run_id in (first, second)] == ["DONE", "DONE"]
    assert pipeline.created()["batches"] == 2


def test_a_shard_refused_fails_the_run_and_stops_its_other_shards(batch_pipeline: Pipeline) -> None:
    # Shard 0 runs (slowly); shard 1 waits for a batch slot (its file uploaded), then Bailian refuses its batch
    # (a model the account may not use: 403).
    http_json(f"{batch_pipeline.url}/_emulator/config", "POST", {"quotas": {"batches": 1}})
    batch_pipeline.script("batch", "SLOW:36000", count=1)
    run_id = batch_pipeline.upload(KEY, batch_input(80))
    run = batch_pipeline.run(run_id)["run"]
    (in_flight,) = [shard for shard in run["batch"]["shards"] if shard["batch_id"]]
    assert run["stage"] == "waiting", run
    http_json(f"{batch_pipeline.url}/_emulator/config", "POST", {"quotas": {"batches": 2}})
    batch_pipeline.fault(
        method="POST",
        path="/compatible-mode/v1/batches",
        status=403,
        code="AccessDenied",
        message="The model is not authorized for this account.",
        times=1,
    )

    run = batch_pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert "AccessDenied" in run["error"]["reason"], run["error"]
    assert service_batch(batch_pipeline, in_flight["batch_id"])["status"] in ("cancelling", "cancelled")
    assert pipeline_live(batch_pipeline)["compat_files"] == 0, "the failed run's files do not stay"
    stages = [entry["stage"] for entry in batch_pipeline.history(run_id)]
    assert stages[-2:] == ["cleaning-up", "failed"], stages
    assert batch_pipeline.run(run_id)["run"]["owns"] == []
