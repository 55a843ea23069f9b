"""A run of one shard uploads its file while the plan reads the input (`kinds/batch/ahead.py`): one read of the input,
and still nothing made on Bailian for an input the plan refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import Pipeline, http_json
from test_batch import (
    CHAT,
    KEY,
    answered_ids,
    batch_input,
    request_line,
    service_batch,
)

# Over three of the plan's 2 MiB reads: the upload is under way well before the plan reaches the last line.
LONG_LINES = 1_600


def long_line(number: int, custom_id: str | None = None) -> bytes:
    return request_line(
        number,
        custom_id=custom_id,
        body={"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {number} " + "x" * 4_000}]},
    )


def long_input(count: int = LONG_LINES) -> bytes:
    return b"".join(long_line(n) for n in range(1, count + 1))


def created_files(pipeline: Pipeline) -> int:
    return int(pipeline.created().get("compat_files", 0))


def planning_entry(pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in pipeline.history(run_id) if "requests in" in e["changed"]]
    return entry


def test_the_shard_file_is_made_by_the_plan_and_is_the_input(pipeline: Pipeline) -> None:
    data = long_input()
    assert len(data) > 3 * (2 << 20)
    run_id = pipeline.upload(KEY, data)

    run = pipeline.pump(run_id, timeout=120)

    assert run["stage"] == "DONE", run
    assert "shard 0 uploaded as" in planning_entry(pipeline, run_id)["changed"]
    shard = run["batch"]["shards"][0]
    batch = service_batch(pipeline, shard["batch_id"])
    assert batch["input_file_id"] == shard["file_id"]
    assert batch["request_counts"]["total"] == LONG_LINES
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, LONG_LINES + 1)]
    # The input's file and the answers' file; no second upload of the input.
    assert created_files(pipeline) == 2


def test_a_bad_last_line_stops_the_upload_before_it_is_whole(pipeline: Pipeline) -> None:
    bad = json.dumps({"custom_id": "z", "method": "POST", "url": CHAT, "body": "hi"}).encode() + b"\n"
    run_id = pipeline.upload(KEY, long_input() + bad)

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED", run
    assert (run["error"]["line"], run["error"]["field"]) == (LONG_LINES + 1, "body")
    assert created_files(pipeline) == 0
    assert pipeline.created()["batches"] == 0


def test_a_duplicate_id_on_the_last_line_makes_no_file(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, long_input() + long_line(LONG_LINES + 1, custom_id="req-7"))

    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED", run
    assert (run["error"]["line"], run["error"]["field"]) == (LONG_LINES + 1, "custom_id")
    assert created_files(pipeline) == 0


def test_a_refused_upload_falls_back_to_the_submit(pipeline: Pipeline) -> None:
    pipeline.fault(method="POST", path="/compatible-mode/v1/files", status=500, times=1)
    run_id = pipeline.upload(KEY, long_input(400))

    run = pipeline.pump(run_id, timeout=120)

    assert run["stage"] == "DONE", run
    assert "uploaded as" not in planning_entry(pipeline, run_id)["changed"]
    assert pipeline.fault_hits() == [1]
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 401)]
    assert created_files(pipeline) == 2


def test_an_answer_lost_after_the_upload_finds_the_file_by_its_name(pipeline: Pipeline) -> None:
    # The file is made, its answer never arrives: the plan finds it by the shard's tag instead of leaving it to the
    # submit, which would make a second one.
    pipeline.fault(method="POST", path="/compatible-mode/v1/files", drop="after", times=1)
    run_id = pipeline.upload(KEY, long_input(400))

    run = pipeline.pump(run_id, timeout=120)

    assert run["stage"] == "DONE", run
    assert "shard 0 uploaded as" in planning_entry(pipeline, run_id)["changed"]
    assert created_files(pipeline) == 2
    assert dict(http_json(f"{pipeline.url}/_emulator/state")["live"])["compat_files"] == 0


def test_inputs_not_sent_as_they_are_are_uploaded_by_the_submit(batch_pipeline: Pipeline) -> None:
    # A blank line (left out of the shard's body), and an input of several shards: the plan sends nothing.
    for key, data in (
        ("batches/team/blank.jsonl", batch_input(3) + b"\n" + request_line(4)),
        ("batches/team/many.jsonl", batch_input(90)),
    ):
        run_id = batch_pipeline.upload(key, data)
        run = batch_pipeline.pump(run_id, timeout=120)
        assert run["stage"] == "DONE", run
        assert "uploaded as" not in planning_entry(batch_pipeline, run_id)["changed"]


def test_a_plan_that_died_after_its_upload_adopts_the_file_when_it_is_driven_again(pipeline: Pipeline) -> None:
    # The file is up, then the plan dies before it records anything (the ids it leaves for the collect cannot be
    # written): the planning intent is driven again after its lease and finds the file by the shard's tag.
    pipeline.fault(method="PUT", path="*/_ids/*", status=500, times=20)
    pipeline.put(KEY, long_input(400))
    with pytest.raises(Exception):  # noqa: B017 - whatever the handler lets escape, FC retries
        pipeline.deliver_new()
    run = pipeline.run_for_key(KEY)
    run_id = run["run_id"]
    assert run["stage"] == "batch-planning", run
    (made,) = pipeline.bailian("GET", "/compatible-mode/v1/files")["data"]
    pipeline.clear_faults()
    pipeline.end_leases()

    run = pipeline.pump(run_id, timeout=120, raising_ok=True)

    assert run["stage"] == "DONE", run
    assert planning_entry(pipeline, run_id)["changed"].endswith(f"shard 0 uploaded as {made['id']}")
    assert answered_ids(pipeline, run_id) == [f"req-{n}" for n in range(1, 401)]
    # The one input file the dead plan made, adopted; and the answers' file.
    assert created_files(pipeline) == 2
    assert dict(http_json(f"{pipeline.url}/_emulator/state")["live"])["compat_files"] == 0
