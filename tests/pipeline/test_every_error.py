"""A dataset with several bad lines fails its run naming every one of them (up to the cap), and Bailian is asked
to make nothing."""

from __future__ import annotations

import json

from harness import SFT_SAMPLE, Pipeline

from bailian_flow.validate import MAX_REPORTED_ERRORS

LINES = SFT_SAMPLE.decode().splitlines()
LAST_IS_USER = json.dumps({"messages": [{"role": "user", "content": "hi"}]})


def _dataset(bad: dict[int, str]) -> bytes:
    return "".join((bad.get(number, line)) + "\n" for number, line in enumerate(LINES, start=1)).encode()


def _fail(pipeline: Pipeline, key: str, data: bytes) -> dict[str, object]:
    pipeline.put(key, data)
    [record] = [r for r in pipeline.new_records() if r["oss"]["object"]["key"] == key]
    pipeline.deliver(record)
    run = pipeline.run_for_key(key)
    assert run["stage"] == "FAILED", run
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"]) == (0, 0), created
    return run


def test_every_bad_line_is_named(pipeline: Pipeline) -> None:
    key = "datasets/every/train.jsonl"
    run = _fail(pipeline, key, _dataset({2: LAST_IS_USER, 4: "{oops", 6: json.dumps({"messages": 3})}))
    error = run["error"]
    assert isinstance(error, dict)
    assert (error["object"], error["line"], error["field"]) == (key, 2, "messages[0].role")
    assert [(e["line"], e["field"]) for e in error["errors"]] == [(2, "messages[0].role"), (4, None), (6, "messages")]
    assert "JSON" in error["errors"][1]["message"]


def test_the_report_stops_at_the_cap(pipeline: Pipeline) -> None:
    data = (LAST_IS_USER + "\n").encode() * (MAX_REPORTED_ERRORS + 20)
    run = _fail(pipeline, "datasets/every/many.jsonl", data)
    error = run["error"]
    assert isinstance(error, dict)
    assert [e["line"] for e in error["errors"]] == list(range(1, MAX_REPORTED_ERRORS + 1))
