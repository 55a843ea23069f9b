"""The timer at scale, in miniature: statuses read in bulk (a page size of 1 forces paging), a rotating order
that gives every run its turn when a tick cannot visit them all, and what a tick costs, recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from emulator_support import TEST_API_KEY, Emulator, start_emulator
from harness import SFT_SAMPLE, Pipeline, http_json


def _stages(pipeline: Pipeline, run_ids: list[str]) -> list[str]:
    return [pipeline.run(run_id)["run"]["stage"] for run_id in run_ids]


def _three_runs_in_training(pipeline: Pipeline) -> list[str]:
    run_ids = [pipeline.upload(f"datasets/fair/{n}.jsonl", SFT_SAMPLE + b"\n" * n) for n in range(3)]
    for _ in range(3):
        pipeline.deliver_new()
    assert _stages(pipeline, run_ids) == ["training"] * 3
    return run_ids


def test_a_tick_that_cannot_visit_every_run_starts_the_next_where_it_stopped(
    emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = Pipeline(
        emulator_reset.url,
        monkeypatch,
        BAILIAN_FLOW_TIMER_PAGE_SIZE="1",
        BAILIAN_FLOW_TIMER_VISIT_BUDGET="1",
        BAILIAN_FLOW_ON_SUCCESS="none",
    )
    run_ids = _three_runs_in_training(pipeline)
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 200})  # every job has succeeded

    succeeded = []
    for _ in range(3):
        report = pipeline.tick()
        assert report["counts"]["loaded"] == 1, report
        assert report["deferred"], "the others wait for their turn"
        succeeded.append(_stages(pipeline, run_ids).count("job-succeeded"))
    # One more run's turn each tick, none visited twice before all had theirs.
    assert succeeded == [1, 2, 3]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator whose clock moves only when the test says: job statuses hold still between ticks."""
    process, url = start_emulator(tmp_path_factory.mktemp("frozen"), "--time-scale", "0.0001")
    try:
        yield Emulator(url=url, api_key=TEST_API_KEY, data_dir=tmp_path_factory.mktemp("unused"))
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_unchanged_runs_cost_no_read_and_one_list_pass_polls_them_all(
    frozen: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen.reset()
    pipeline = Pipeline(frozen.url, monkeypatch, BAILIAN_FLOW_TIMER_PAGE_SIZE="1")
    run_ids = _three_runs_in_training(pipeline)
    first = pipeline.tick()  # learns the runs (loads each once) and writes the hint
    assert first["counts"]["loaded"] == 3 and sorted(first["polled"]) == sorted(run_ids)

    steady = pipeline.tick()
    counts = steady["counts"]
    assert sorted(steady["polled"]) == sorted(run_ids)
    assert counts["loaded"] == 0, counts
    # One listing of the three jobs, a page each (page size 1), and not one GET per run.
    assert counts["bailian_calls"] == 3, counts
    # The hint, the active and ending markers, the scan and the quota lines (one LIST per quota: jobs, training slot,
    # files,
    # batches): a fixed cost, nothing per run.
    # (Loading a run is at least two reads, a LIST and a GET: the first tick paid them, this one does not.)
    assert counts["oss_reads"] <= 9 < first["counts"]["oss_reads"], (first["counts"], counts)

    http_json(f"{frozen.url}/_emulator/clock", "POST", {"advance": 6})  # PENDING -> QUEUING
    moved = pipeline.tick()
    assert moved["counts"]["loaded"] == 3 and moved["counts"]["bailian_calls"] == 3, moved["counts"]
    assert {pipeline.run(run_id)["run"]["job_status"] for run_id in run_ids} == {"QUEUING"}


def _requests(count: int, tag: str) -> bytes:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "question"}]}
    lines = [
        {"custom_id": f"{tag}-{n}", "method": "POST", "url": "/v1/chat/completions", "body": body} for n in range(count)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _batch_pipeline(frozen: Emulator, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """Batch runs of two shards each, and room for all their batches at once (the account allows 2 by default)."""
    frozen.reset()
    http_json(f"{frozen.url}/_emulator/config", "POST", {"quotas": {"batches": 10}})
    return Pipeline(
        frozen.url,
        monkeypatch,
        BAILIAN_FLOW_TIMER_PAGE_SIZE="2",
        BAILIAN_FLOW_BATCH_SHARD_LINES="2",
        BAILIAN_FLOW_QUOTA_BATCHES="10",
    )


def _in_flight(pipeline: Pipeline, run_id: str) -> list[str]:
    run = pipeline.run(run_id)["run"]
    assert run["stage"] == "batch-running", run
    return [shard["batch_id"] for shard in run["batch"]["shards"] if shard["status"] == "validating"]


def test_batch_shards_are_polled_from_one_list_of_batches_not_one_get_each(
    frozen: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _batch_pipeline(frozen, monkeypatch)
    run_ids = [pipeline.upload(f"batches/fair/{n}.jsonl", _requests(4, f"r{n}")) for n in range(3)]
    assert [len(_in_flight(pipeline, run_id)) for run_id in run_ids] == [2, 2, 2]
    pipeline.tick()  # learns the runs and their shards

    steady = pipeline.tick()
    counts = steady["counts"]
    assert sorted(steady["polled"]) == sorted(run_ids)
    assert counts["loaded"] == 0, counts
    # Six batches listed two a page: three calls, where a GET per shard would be six.
    assert counts["bailian_calls"] == 3, counts

    http_json(f"{frozen.url}/_emulator/clock", "POST", {"advance": 60})  # every batch has completed
    moved = pipeline.tick()
    assert moved["counts"]["loaded"] == 3 and moved["counts"]["bailian_calls"] == 3, moved["counts"]
    for run_id in run_ids:
        run = pipeline.run(run_id)["run"]
        assert run["stage"] == "batch-ready", run
        assert {shard["status"] for shard in run["batch"]["shards"]} == {"completed"}, run


def test_a_shard_the_list_does_not_show_yet_is_read_by_its_own_get(
    frozen: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _batch_pipeline(frozen, monkeypatch)
    http_json(f"{frozen.url}/_emulator/config", "POST", {"list_lag_seconds": 10})
    run_id = pipeline.upload("batches/fair/lagging.jsonl", _requests(4, "lag"))
    assert len(_in_flight(pipeline, run_id)) == 2
    pipeline.tick()

    lagging = pipeline.tick()
    # The list (one call, empty: the batches are too young to be listed), then a GET for each of the two shards.
    assert lagging["counts"]["loaded"] == 1 and lagging["counts"]["bailian_calls"] == 3, lagging["counts"]
    assert pipeline.run(run_id)["run"]["stage"] == "batch-running"

    http_json(f"{frozen.url}/_emulator/clock", "POST", {"advance": 60})  # listed now, and completed
    listed = pipeline.tick()
    assert listed["counts"]["bailian_calls"] == 1, listed["counts"]
    assert pipeline.run(run_id)["run"]["stage"] == "batch-ready"
