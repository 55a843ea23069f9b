"""Bad input through the real functions: a FAILED run that names object, line and field; nothing else happens.

The handler must return normally (an exception would make FC retry for hours), the source object must be left
exactly as it was, and Bailian must not be asked to make anything.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import ROOT, SFT_SAMPLE, Pipeline

KEY = "datasets/bad/train.jsonl"
SFT_LINES = SFT_SAMPLE.decode().splitlines()
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def _line(*messages: dict[str, Any]) -> str:
    return json.dumps({"messages": list(messages)}, ensure_ascii=False)


def _with_line(number: int, replacement: str | bytes) -> bytes:
    """The SFT sample with its line `number` (1-based) replaced."""
    lines = [line.encode() for line in SFT_LINES]
    lines[number - 1] = replacement if isinstance(replacement, bytes) else replacement.encode()
    return b"\n".join(lines) + b"\n"


def _upload_bad(pipeline: Pipeline, key: str, data: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Put `data`, deliver its event, and check the invariants of bad input; return the FAILED run."""
    pipeline.put(key, data, metadata)
    etag = pipeline.head_etag(key)
    records = [r for r in pipeline.new_records() if r["oss"]["object"]["key"] == key]
    assert len(records) == 1
    results = pipeline.deliver(records[0])  # raises if the handler raised
    assert len(results) == 1
    returned = results[0]["runs"]
    assert [run["stage"] for run in returned] == ["FAILED"], returned
    run = pipeline.run_for_key(key)
    assert run["stage"] == "FAILED", run
    assert run["run_id"] == returned[0]["run_id"]
    # Untouched: same bytes, same ETag.
    assert pipeline.get(key) == data
    assert pipeline.head_etag(key) == etag
    # Later ticks and deliveries do not resurrect it.
    pipeline.pump(timeout=10)
    assert pipeline.run(run["run_id"])["run"]["stage"] == "FAILED"
    return run


def _nothing_created(pipeline: Pipeline) -> None:
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (0, 0, 0), created


# --- invalid datasets -----------------------------------------------------------------------------------------

INVALID_DATASETS = [
    pytest.param(
        _with_line(7, '{"messages": [{"role": "user", "content": "hi"}'),
        7,
        None,
        "invalid JSON",
        id="malformed-json",
    ),
    pytest.param(
        _with_line(3, _line(SYSTEM, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"})),
        3,
        "messages[1].role",
        "expected 'user'",
        id="wrong-role-order",
    ),
    pytest.param(
        _with_line(
            5,
            _line(
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello", "loss_weight": 1.5},
            ),
        ),
        5,
        "messages[1].loss_weight",
        "(0, 1]",
        id="loss-weight-out-of-range",
    ),
    pytest.param(
        _with_line(
            2,
            _line(
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "<think>\nplan\n</think>\n\nHello"},
                {"role": "user", "content": "And?"},
                {"role": "assistant", "content": "<think>\nok\n</think>\n\nBye"},
            ),
        ),
        2,
        "messages[1].content",
        "<think>",
        id="misplaced-think-tag",
    ),
    pytest.param(
        _with_line(4, b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}'),
        4,
        None,
        "invalid UTF-8",
        id="invalid-utf8",
    ),
    pytest.param(b"", None, None, "file is empty", id="empty-file"),
]


@pytest.mark.parametrize(("data", "line", "field", "reason"), INVALID_DATASETS)
def test_an_invalid_dataset_fails_with_object_line_and_field(
    pipeline: Pipeline, data: bytes, line: int | None, field: str | None, reason: str
) -> None:
    run = _upload_bad(pipeline, KEY, data)

    error = run["error"]
    assert error["code"] == "InvalidDataset"
    assert error["object"] == KEY
    assert error["line"] == line
    assert error["field"] == field
    assert reason in error["reason"]
    assert error["retryable"] is False
    _nothing_created(pipeline)


def test_a_dpo_dataset_without_rejected_fails_naming_the_field(pipeline: Pipeline) -> None:
    dpo = (ROOT / "samples" / "dpo" / "train.jsonl").read_bytes().decode().splitlines()
    broken = json.loads(dpo[1])
    del broken["rejected"]
    dpo[1] = json.dumps(broken, ensure_ascii=False)
    pipeline.put(KEY + ".flow.yaml", b"training_type: dpo_lora\n")

    run = _upload_bad(pipeline, KEY, ("\n".join(dpo) + "\n").encode())

    error = run["error"]
    assert (error["code"], error["object"], error["line"], error["field"]) == ("InvalidDataset", KEY, 2, "rejected")
    assert run["settings"]["training_type"] == "dpo_lora"
    _nothing_created(pipeline)


# --- unknown model: caught by Bailian when the job starts ----------------------------------------------------


def test_an_unknown_model_fails_at_job_start_quoting_bailian(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"model: no-such-model\n")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    error = run["error"]
    assert error["code"] in ("ModelNotFound", "InvalidParameter")
    assert "no-such-model" in error["reason"]
    assert "Model not found" in error["reason"], "the emulator's own message is quoted"
    assert error["retryable"] is False
    # Failed through its end of life: `cleaning-up` (the error already recorded), then `failed`.
    assert [e["stage"] for e in pipeline.history(run_id)][-3:] == ["starting-job", "cleaning-up", "failed"]
    assert pipeline.created()["fine_tunes"] == 0


# --- bad per-upload settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sidecar", "field", "reason"),
    [
        pytest.param(b"modle: qwen3-8b\n", "modle", "modle", id="unknown-key"),
        pytest.param(
            b"on_success: {capacity: 0}\n", "on_success.capacity", "greater than or equal to 1", id="capacity-0"
        ),
        pytest.param(b"model: [qwen3-8b\n", None, "not valid YAML", id="invalid-yaml"),
        pytest.param(b"training_type: rlhf\n", "training_type", "training_type", id="bad-training-type"),
    ],
)
def test_a_bad_sidecar_fails_naming_the_setting(
    pipeline: Pipeline, sidecar: bytes, field: str | None, reason: str
) -> None:
    pipeline.put(KEY + ".flow.yaml", sidecar)

    run = _upload_bad(pipeline, KEY, SFT_SAMPLE)

    error = run["error"]
    assert error["code"] == "InvalidSettings"
    assert error["object"] == KEY + ".flow.yaml", "the sidecar is the object to fix"
    assert error["field"] == field
    assert reason in error["reason"]
    _nothing_created(pipeline)


def test_hyper_parameters_metadata_that_is_not_json_fails_naming_it(pipeline: Pipeline) -> None:
    run = _upload_bad(pipeline, KEY, SFT_SAMPLE, metadata={"flow-hyper-parameters": "{n_epochs: 2"})

    error = run["error"]
    assert error["code"] == "InvalidSettings"
    assert error["object"] == KEY
    assert error["field"] == "hyper_parameters"
    assert "not JSON" in error["reason"]
    _nothing_created(pipeline)


def test_unknown_flow_metadata_fails_naming_it(pipeline: Pipeline) -> None:
    run = _upload_bad(pipeline, KEY, SFT_SAMPLE, metadata={"flow-modle": "qwen3-8b"})

    error = run["error"]
    assert (error["code"], error["object"], error["field"]) == ("InvalidSettings", KEY, "flow-modle")
    _nothing_created(pipeline)


# --- events of unexpected shape ----------------------------------------------------------------------------

BAD_EVENTS = [
    pytest.param(b"\x00\xffnot json at all", id="garbage-bytes"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"events": [{}]}', id="empty-record"),
    pytest.param(b'{"events": "datasets/x.jsonl"}', id="events-not-a-list"),
    pytest.param(b"[1, 2, 3]", id="array"),
    pytest.param(b'{"events": [{"eventName": 5, "oss": {"object": {"key": 7}}}]}', id="wrong-types"),
]


@pytest.mark.parametrize("function", ["on_upload", "on_file_ready", "on_success"])
@pytest.mark.parametrize("raw", BAD_EVENTS)
def test_an_oss_function_records_a_bad_event_as_a_failed_run(pipeline: Pipeline, function: str, raw: bytes) -> None:
    result = pipeline.invoke(function, raw)

    assert [run["stage"] for run in result["runs"]] == ["FAILED"]
    recorded = pipeline.run(result["runs"][0]["run_id"])["run"]
    assert recorded["stage"] == "FAILED"
    assert recorded["error"]["code"] == "InvalidEvent"
    assert function in recorded["error"]["reason"]
    # The same bad event delivered again maps to the same run (FC delivers at least once).
    again = pipeline.invoke(function, raw)
    assert again["runs"][0]["run_id"] == recorded["run_id"]
    assert len(pipeline.history(recorded["run_id"])) == 1
    _nothing_created(pipeline)


@pytest.mark.parametrize("raw", [*BAD_EVENTS, pytest.param(b'{"triggerTime": 5}', id="timer-wrong-types")])
def test_the_timer_ticks_whatever_its_event(pipeline: Pipeline, raw: bytes) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    pipeline.deliver_new()
    assert pipeline.run(run_id)["run"]["stage"] == "training"

    report = pipeline.invoke("on_timer", raw)

    assert report["active"] == 1
    assert report["polled"] == [run_id]


# --- odd but valid keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        pytest.param("datasets/my data/train v2.jsonl", False, id="spaces"),
        pytest.param("datasets/中文 数据/train v2.jsonl", False, id="non-ascii"),
        pytest.param("datasets/中文 数据/train v2.jsonl", True, id="non-ascii-url-encoded"),
        pytest.param("datasets/a+b/x%20y.jsonl", True, id="plus-and-percent-url-encoded"),
        # Sent as is, this key looks encoded; only the key as sent exists, so that is the one taken.
        pytest.param("datasets/100%41 off/x%20y.jsonl", False, id="literal-percent-escape-sent-raw"),
    ],
)
def test_odd_keys_are_not_errors(pipeline: Pipeline, key: str, encoded: bool) -> None:
    pipeline.encode_keys = encoded
    pipeline.put(key, SFT_SAMPLE)
    records = pipeline.new_records()
    assert [record["oss"]["object"]["key"] != key for record in records] == [encoded], "encoded as asked"

    for record in records:
        pipeline.deliver(record)
    run = pipeline.pump(timeout=30)
    assert run["active"] == 0

    [state] = pipeline.runs()
    assert state["source"]["key"] == key
    assert state["stage"] == "DONE", state
    assert pipeline.get(key) == SFT_SAMPLE


# --- events to ignore ----------------------------------------------------------------------------------------


def test_an_object_outside_the_datasets_prefix_is_ignored(pipeline: Pipeline) -> None:
    pipeline.put("uploads/train.jsonl", SFT_SAMPLE)
    [record] = pipeline.new_records()
    assert pipeline.targets(record) == [], "the trigger filter would not route it"

    result = pipeline.invoke("on_upload", {"events": [record]})

    assert result == {"runs": []}
    assert pipeline.runs() == []
    _nothing_created(pipeline)


def test_an_object_deleted_before_its_event_is_processed_makes_no_run(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    [record] = [r for r in pipeline.new_records() if r["oss"]["object"]["key"] == KEY]
    pipeline._store_call(lambda store: store.delete(KEY))

    results = pipeline.deliver(record)

    assert results == [{"runs": []}]
    assert pipeline.runs() == []
    _nothing_created(pipeline)


def test_an_object_deleted_after_its_run_began_fails_the_run(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    pipeline.new_records()  # the upload's own event is lost; the run is started through the API instead
    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY})
    assert status == 202, body
    run_id = body["run"]["run_id"]
    pipeline._store_call(lambda store: store.delete(KEY))

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert run["error"]["code"] == "SourceMissing"
    assert run["error"]["object"] == KEY
    _nothing_created(pipeline)


def test_an_event_from_another_bucket_fails_as_an_invalid_event(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    [record] = [r for r in pipeline.new_records() if r["oss"]["object"]["key"] == KEY]
    record["oss"]["bucket"]["name"] = "someone-elses-bucket"

    result = pipeline.invoke("on_upload", {"events": [record]})

    [run] = result["runs"]
    assert run["stage"] == "FAILED"
    assert run["error"]["code"] == "InvalidEvent"
    assert "someone-elses-bucket" in run["error"]["reason"]
    assert pipeline.get(KEY) == SFT_SAMPLE
    _nothing_created(pipeline)


@pytest.mark.parametrize("key", ["runs/_scan-cursor.json", "runs/loose-file-ready.json", "runs/../x-file-ready.json"])
def test_an_object_under_runs_that_is_not_a_run_entry_is_ignored(pipeline: Pipeline, key: str) -> None:
    pipeline.put(key, b"{}")
    [record] = pipeline.new_records()
    for function in ("on_upload", "on_file_ready", "on_success"):
        assert pipeline.invoke(function, {"events": [record]}) == {"runs": []}
    assert pipeline.runs() == []
