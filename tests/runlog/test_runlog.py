"""The run log's commit protocol on both backends: FileStore on a temp dir and OssStore on the emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from store_support import BACKENDS, emulator_store, keys, open_backend

from bailian_flow.runlog import RunEntry, RunLog, RunLogError, is_run_id, run_id_for
from bailian_flow.store import ObjectStore


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    async with open_backend(request, tmp_path) as backend:
        yield backend


RUN = "r0123456789abcde"


async def test_append_then_latest_and_history(store: ObjectStore) -> None:
    log = RunLog(store)
    assert await log.latest(RUN) is None
    assert await log.history(RUN) == []

    assert await log.append(RUN, 0, "received", {"stage": "received", "n": 0}, "upload seen", writer="req-a")
    assert await log.append(RUN, 1, "file-ready", {"stage": "file-ready", "n": 1}, "file uploaded", writer="req-b")

    latest = await log.latest(RUN)
    assert latest is not None
    assert (latest.seq, latest.stage, latest.state, latest.writer) == (
        1,
        "file-ready",
        {"stage": "file-ready", "n": 1},
        "req-b",
    )
    assert latest.at.endswith("Z")
    assert [(e.seq, e.stage) for e in await log.history(RUN)] == [(0, "received"), (1, "file-ready")]

    # The commit keys hold the log; each stage also got its marker for the trigger suffix filters.
    assert await keys(store, f"runs/{RUN}/") == [
        f"runs/{RUN}/00000000-received.json",
        f"runs/{RUN}/00000000.json",
        f"runs/{RUN}/00000001-file-ready.json",
        f"runs/{RUN}/00000001.json",
    ]
    marker = await store.get(f"runs/{RUN}/00000001-file-ready.json")
    assert marker is not None and RunEntry.model_validate_json(marker) == latest


async def test_same_seq_is_refused_whatever_the_stage(store: ObjectStore) -> None:
    log = RunLog(store)
    assert await log.append(RUN, 0, "received", {}, writer="a")
    assert not await log.append(RUN, 0, "received", {}, writer="b")
    assert not await log.append(RUN, 0, "failed", {}, writer="c")
    history = await log.history(RUN)
    assert [(e.seq, e.stage, e.writer) for e in history] == [(0, "received", "a")]
    assert await store.head(f"runs/{RUN}/00000000-failed.json") is None


async def test_concurrent_appends_at_one_seq_have_one_winner(store: ObjectStore) -> None:
    log = RunLog(store)
    for seq, stage in enumerate(["received", "uploading", "file-ready"]):
        assert await log.append(RUN, seq, stage, {"seq": seq}, writer="setup")

    # 20 deliveries racing for seq 3, each wanting a different stage, each through its own RunLog.
    stages = [f"stage-{n:02d}" for n in range(20)]
    results = await asyncio.gather(
        *(RunLog(store).append(RUN, 3, stage, {"by": stage}, writer=f"req-{stage}") for stage in stages)
    )
    assert results.count(True) == 1
    winner = stages[results.index(True)]

    history = await RunLog(store).history(RUN)
    assert [e.seq for e in history] == [0, 1, 2, 3]
    assert (history[-1].stage, history[-1].state, history[-1].writer) == (
        winner,
        {"by": winner},
        f"req-{winner}",
    )
    latest = await RunLog(store).latest(RUN)
    assert latest == history[-1]
    # Only the winner's stage marker exists: losers never trigger the next function.
    markers = [k for k in await keys(store, f"runs/{RUN}/00000003-")]
    assert markers == [f"runs/{RUN}/00000003-{winner}.json"]


async def test_latest_sees_entries_written_by_other_instances(store: ObjectStore) -> None:
    reader, writer = RunLog(store), RunLog(store)
    assert await writer.append(RUN, 0, "received", {})
    first = await reader.latest(RUN)
    assert first is not None and first.seq == 0
    for seq in range(1, 4):
        assert await writer.append(RUN, seq, "training", {"poll": seq})
    # The reader remembers seq 0 and lists only after it, yet must find the newest entry.
    newest = await reader.latest(RUN)
    assert newest is not None and (newest.seq, newest.state) == (3, {"poll": 3})
    assert await reader.latest(RUN) == newest


async def test_lost_stage_marker_is_republished_idempotently(store: ObjectStore) -> None:
    log = RunLog(store)
    assert await log.append(RUN, 0, "job-succeeded", {"job_id": "ft-1"})
    marker = f"runs/{RUN}/00000000-job-succeeded.json"
    await store.delete(marker)  # as if the writer died between commit and marker
    latest = await log.latest(RUN)
    assert latest is not None
    assert not await log.is_published(latest)
    assert await log.publish(latest)
    assert not await log.publish(latest)  # a second re-drive changes nothing
    assert await log.is_published(latest)
    assert await store.get(marker) == latest.model_dump_json().encode()


async def test_active_markers(store: ObjectStore) -> None:
    log = RunLog(store)
    assert await log.list_active() == []
    await log.mark_active("r1")
    await asyncio.sleep(0.01)
    await log.mark_active("r2")
    await log.mark_active("r1")  # idempotent: keeps r1's original time
    assert set(await log.list_active()) == {"r1", "r2"}
    await log.clear_active("r1")
    await log.clear_active("r1")
    assert await log.list_active() == ["r2"]


async def test_list_runs_skips_past_each_runs_entries(store: ObjectStore) -> None:
    log = RunLog(store)
    run_ids = sorted(run_id_for("b", f"datasets/{n}.jsonl", "E") for n in range(5))
    for run_id in run_ids:
        for seq in range(3):
            assert await log.append(run_id, seq, "received", {})
    assert await log.list_runs() == run_ids
    assert await log.list_runs(limit=2) == run_ids[:2]
    assert await log.list_runs(limit=10, start_after=run_ids[1]) == run_ids[2:]


async def test_recent_lists_newest_first_in_pages_without_repeats(store: ObjectStore) -> None:
    log = RunLog(store)
    start = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.timezone.utc)
    run_ids = [f"r{n:015x}" for n in range(5)]
    for minutes, run_id in enumerate(run_ids):
        await log.add_to_index(run_id, start + dt.timedelta(minutes=minutes))
    # A delivery that lost the race to create a run indexed it too: listed once all the same.
    await log.add_to_index(run_ids[2], start + dt.timedelta(minutes=2, milliseconds=5))
    newest_first = list(reversed(run_ids))

    assert await log.recent() == (newest_first, None)
    first, cursor = await log.recent(limit=2)
    assert first == newest_first[:2] and cursor is not None
    rest, end = await log.recent(limit=10, after=cursor)
    assert rest == newest_first[2:] and end is None


async def test_corrupt_entry_is_reported_not_swallowed(store: ObjectStore) -> None:
    await store.put(f"runs/{RUN}/00000000.json", b"not json")
    with pytest.raises(RunLogError, match=r"00000000\.json"):
        await RunLog(store).latest(RUN)


async def test_bad_names_are_refused(store: ObjectStore) -> None:
    log = RunLog(store)
    with pytest.raises(ValueError, match="stage"):
        await log.append(RUN, 0, "bad/stage", {})
    with pytest.raises(ValueError, match="run_id"):
        await log.append("../escape", 0, "received", {})
    with pytest.raises(ValueError, match="seq"):
        await log.append(RUN, -1, "received", {})


async def test_create_whose_response_was_lost_still_counts_as_won(emulator: Any) -> None:
    # The emulator stores the entry, then drops the connection: the SDK retries and meets its own entry.
    store = emulator_store(emulator.url, "flow-drop")
    bucket = store.bucket
    rule = {"method": "PUT", "path": f"/{bucket}/runs/{RUN}/00000000.json", "times": 1, "drop": "after"}
    emulator.add_faults(rule)
    try:
        log = RunLog(store)
        assert await log.append(RUN, 0, "received", {"x": 1}, writer="me")
        assert emulator.fault_hits() == [1]  # the first PUT really was dropped after being stored
        latest = await log.latest(RUN)
        assert latest is not None and latest.writer == "me"
        assert await store.head(f"runs/{RUN}/00000000-received.json") is not None
        # And a genuine rival is still refused.
        assert not await RunLog(store).append(RUN, 0, "received", {"x": 2}, writer="rival")
    finally:
        emulator.clear_faults()
        await store.close()


def test_run_id_is_deterministic_short_and_etag_quote_blind() -> None:
    a = run_id_for("bucket", "datasets/train.jsonl", "688A7BF4F233DC9C88A80BF985AB0000")
    assert a == run_id_for("bucket", "datasets/train.jsonl", '"688a7bf4f233dc9c88a80bf985ab0000"')
    assert len(a) == 16 and a.startswith("r") and all(c in "0123456789abcdef" for c in a[1:])
    assert a != run_id_for("bucket", "datasets/train.jsonl", "OTHER")
    assert a != run_id_for("bucket2", "datasets/train.jsonl", "688A7BF4F233DC9C88A80BF985AB0000")
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert run_id_for("ab", "c", "e") != run_id_for("a", "bc", "e")
    assert is_run_id(a) and is_run_id("manual-run_1")
    assert not any(is_run_id(v) for v in ("", "_scan-cursor.json", "../x", "a/b", "x" * 65))
