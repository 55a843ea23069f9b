"""The timer at scale, in miniature: statuses read in bulk (a page size of 1 forces paging), a rotating order
that gives every run its turn when a tick cannot visit them all, and what a tick costs, recorded."""

from __future__ import annotations

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
    # The hint, the active markers, the scan and the quota lines (one LIST per quota: jobs, files, batches): a
    # fixed cost, nothing per run.
    # (Loading a run is at least two reads, a LIST and a GET: the first tick paid them, this one does not.)
    assert counts["oss_reads"] <= 7 < first["counts"]["oss_reads"], (first["counts"], counts)

    http_json(f"{frozen.url}/_emulator/clock", "POST", {"advance": 6})  # PENDING -> QUEUING
    moved = pipeline.tick()
    assert moved["counts"]["loaded"] == 3 and moved["counts"]["bailian_calls"] == 3, moved["counts"]
    assert {pipeline.run(run_id)["run"]["job_status"] for run_id in run_ids} == {"QUEUING"}
