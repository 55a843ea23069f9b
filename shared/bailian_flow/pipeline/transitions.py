"""Reading a run and committing its next state: create-only writes, whoever creates first wins."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bailian_flow.pipeline.runtime import Flow, utc_now
from bailian_flow.pipeline.state import TERMINAL, RunError, RunState, Stage

if TYPE_CHECKING:
    from bailian_flow.runlog import RunEntry

log = logging.getLogger("bailian_flow.pipeline")


@dataclass(frozen=True)
class Current:
    """The newest entry of a run's log, parsed."""

    seq: int
    state: RunState
    at: datetime
    writer: str

    def age(self) -> float:
        return (utc_now() - self.at).total_seconds()


def _parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def current_of(entry: RunEntry) -> Current:
    return Current(
        seq=entry.seq,
        state=RunState.model_validate({**entry.state, "seq": entry.seq}),
        at=_parse_at(entry.at),
        writer=entry.writer,
    )


async def load(flow: Flow, run_id: str) -> Current | None:
    entry = await flow.runs.latest(run_id)
    return None if entry is None else current_of(entry)


async def commit(flow: Flow, current: Current, stage: Stage, changed: str, **updates: Any) -> RunState | None:
    """Write the run's next entry. None means another delivery wrote that sequence number first: re-read."""
    state = current.state.model_copy(update={"stage": stage, **updates})
    return await _write(flow, current.seq + 1, state, changed)


async def create(flow: Flow, state: RunState, changed: str) -> RunState | None:
    """Write a run's first entry (sequence 0)."""
    written = await _write(flow, 0, state, changed)
    if written is not None:
        await flow.runs.mark_active(state.run_id)
    return written


async def fail(flow: Flow, current: Current, error: RunError, changed: str | None = None) -> RunState | None:
    return await commit(flow, current, "failed", changed or f"failed: {error.reason}", error=error)


async def _write(flow: Flow, seq: int, state: RunState, changed: str) -> RunState | None:
    state = state.model_copy(update={"seq": seq})
    won = await flow.runs.append(
        state.run_id, seq, state.stage, state.model_dump(mode="json"), changed=changed, writer=flow.writer
    )
    if not won:
        log.info("run %s: seq %d already written by another delivery", state.run_id, seq)
        return None
    log.info("run %s: #%d %s (%s)", state.run_id, seq, state.stage, changed)
    if state.stage in TERMINAL:
        await flow.runs.clear_active(state.run_id)
    # Only the winner notifies, and the message id is stable, so a receiver can dedupe a repeated send.
    await flow.notifier.send(
        f"run.{state.stage}",
        {"changed": changed, "seq": seq, **state.public()},
        msg_id=f"{state.run_id}-{seq}",
    )
    return state
