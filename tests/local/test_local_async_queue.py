"""The local async queue's journal: what was accepted and not finished is delivered again by the next stack."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from local_app import write_app

from bailian_flow.local.async_queue import COMPACT_AFTER, JOURNAL_NAME, Accepted, AsyncJournal, QueueBusy
from bailian_flow.local.stack import LocalStack


def _accepted(request_id: str, payload: bytes = b'{"n": 1}', function: str = "fn_echo") -> Accepted:
    return Accepted(request_id, function, "invoke", payload, time.time())


def test_what_was_accepted_and_not_ended_is_pending_after_reopening(tmp_path: Path) -> None:
    journal = AsyncJournal.open(tmp_path)
    journal.accept([_accepted("a"), _accepted("b", b"\x00\xff binary")], oss_seq=7)
    journal.accept([_accepted("c")])
    journal.attempt_failed("b", 2)
    journal.end("a")
    journal.close()

    again = AsyncJournal.open(tmp_path)
    try:
        assert sorted(again.pending) == ["b", "c"]
        assert again.pending["b"].payload == b"\x00\xff binary" and again.pending["b"].failed_attempts == 2
        assert again.oss_seq == 7, "a line without a cursor leaves it where it was"
    finally:
        again.close()
    # Reopening rewrote it as the queue itself: one line, nothing ended in it.
    [line] = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert [d["id"] for d in json.loads(line)["deliveries"]] == ["b", "c"]


def test_a_line_cut_short_by_a_kill_is_skipped_and_the_rest_still_counts(tmp_path: Path) -> None:
    journal = AsyncJournal.open(tmp_path)
    journal.accept([_accepted("a")], oss_seq=3)
    journal.close()
    with (tmp_path / JOURNAL_NAME).open("a") as handle:
        handle.write('{"op":"accept","deliveries":[{"id":"torn","func')  # SIGKILL mid-write

    again = AsyncJournal.open(tmp_path)
    try:
        assert list(again.pending) == ["a"] and again.oss_seq == 3
        again.accept([_accepted("b")], oss_seq=4)  # appends after a clean rewrite, not onto the torn line
    finally:
        again.close()
    third = AsyncJournal.open(tmp_path)
    try:
        assert sorted(third.pending) == ["a", "b"] and third.oss_seq == 4
    finally:
        third.close()


def test_it_stays_as_small_as_the_queue(tmp_path: Path) -> None:
    journal = AsyncJournal.open(tmp_path)
    try:
        for n in range(COMPACT_AFTER * 2):
            journal.accept([_accepted(f"d{n}")], oss_seq=n)
            journal.end(f"d{n}")
        lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
        assert len(lines) <= COMPACT_AFTER
        assert journal.pending == {}
    finally:
        journal.close()


def test_a_second_stack_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    first = AsyncJournal.open(tmp_path)
    try:
        with pytest.raises(QueueBusy, match="another bailian-flow dev is running"):
            AsyncJournal.open(tmp_path)
    finally:
        first.close()
    AsyncJournal.open(tmp_path).close()  # free again once the first has gone


async def test_a_restarted_stack_delivers_what_the_last_one_accepted_and_did_not_finish(
    tmp_path: Path, emulator_reset: Any
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # What a killed stack leaves: two async invocations accepted, one of them already failed once.
    left = AsyncJournal.open(data_dir)
    left.accept([_accepted("left-1", b'{"n": 1}'), _accepted("left-2", b'{"n": 2}')])
    left.accept([_accepted("gone", b"{}", function="fn_removed_from_s_yaml")])
    left.attempt_failed("left-2", 1)
    left.close()

    async with LocalStack(config, emulator_url=emulator_reset.url, data_dir=data_dir) as stack:
        await stack.wait_idle(timeout=30)
        attempts = sorted((r.request_id, r.attempt, r.ok) for r in stack.records if r.function == "fn_echo")
        assert attempts == [("left-1", 1, True), ("left-2", 2, True)]
    echoed = [json.loads(line) for line in (out / "echo.jsonl").read_text().splitlines()]
    assert sorted(body["n"] for body in echoed) == [1, 2]

    after = AsyncJournal.open(data_dir)
    try:
        assert after.pending == {}, "delivered once finished, and a function no longer in s.yaml dropped"
    finally:
        after.close()


async def test_dev_says_its_earlier_actors_are_dead_only_when_it_owns_the_emulator(
    tmp_path: Path, emulator_reset: Any
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    before = datetime.now(timezone.utc)
    async with LocalStack(config, data_dir=tmp_path / "own") as own:
        started = datetime.fromisoformat(own.environment["BAILIAN_FLOW_ACTORS_DEAD_BEFORE"].replace("Z", "+00:00"))
        assert before <= started <= datetime.now(timezone.utc)
    # Someone else's emulator may have other writers: nothing is known about them.
    async with LocalStack(config, emulator_url=emulator_reset.url, data_dir=tmp_path / "shared") as shared:
        assert shared.environment["BAILIAN_FLOW_ACTORS_DEAD_BEFORE"] == ""
