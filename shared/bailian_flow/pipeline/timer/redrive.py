"""What a lost event left behind: the timer makes a stuck stage's event fire again.

A stage waits for an OSS event (its own stage marker, or a dataset's) or for the actor of its intent. A marker lost
to a crash between commit and marker is written again; a marker that went unanswered longer than `redrive_after`
gets a fresh entry re-announcing the stage (a new object, so a new event); an intent past its lease is re-announced
too, and a run re-announced `MAX_REDRIVES` times fails as Stuck.
"""

from __future__ import annotations

import logging

from bailian_flow.pipeline.protocol import kinds
from bailian_flow.pipeline.protocol.runtime import MAX_REDRIVES, Flow
from bailian_flow.pipeline.protocol.state import RunError
from bailian_flow.pipeline.protocol.transitions import Current, commit, fail

log = logging.getLogger("bailian_flow.pipeline")

# Stages whose own stage marker is the OSS event that chains the next function, for any kind.
TRIGGERING: frozenset[str] = kinds.triggering()
# Stages that wait for such an event (`received` is acted on by its writer directly).
CHAINED: frozenset[str] = TRIGGERING | {"received"}


async def if_lost(flow: Flow, current: Current, redriven: list[str]) -> None:
    """Re-drive the run if its event or its actor was lost; its id goes into `redriven` if anything was done."""
    if _stale(flow, current):
        await _redrive(flow, current, redriven)
    elif current.state.stage in TRIGGERING and flow.settings.writer_dead(current.at):
        # Its writer is known dead (a killed local stack): a marker it did not write never will be, so it is written
        # now rather than after `redrive_after`. A marker it did write has its event journaled and on its way.
        await _publish_lost_marker(flow, current, redriven)


def _stale(flow: Flow, current: Current) -> bool:
    """An intent past its lease (its actor died), or a stage whose event nobody answered."""
    stage, age = current.state.stage, current.age()
    if stage in kinds.intents():
        return current.lease_over(flow)
    return stage in CHAINED and age > flow.redrive_after_seconds


async def _redrive(flow: Flow, current: Current, redriven: list[str]) -> None:
    """Make a stuck stage's OSS event fire again: its lost marker written, else a fresh entry re-announcing it."""
    state = current.state
    if state.stage in TRIGGERING and await _publish_lost_marker(flow, current, redriven):
        return
    if state.redrives >= MAX_REDRIVES:
        reason = f"stuck at {state.stage} after {state.redrives} re-drives; see the function logs"
        await fail(flow, current, RunError(reason=reason, code="Stuck", retryable=True))
        return
    stage = kinds.reannounce_as(state.kind, state.stage)
    if stage is None:
        log.warning("run %s: nothing re-announces %s", state.run_id, state.stage)
        return
    changed = f"re-announced {stage}: no progress for {current.age():.0f}s"
    if await commit(flow, current, stage, changed, redrives=state.redrives + 1) is not None:
        redriven.append(state.run_id)


async def _publish_lost_marker(flow: Flow, current: Current, redriven: list[str]) -> bool:
    """Write the stage marker of the run's newest entry if nobody did. True if written."""
    run_id = current.state.run_id
    entry = await flow.runs.latest(run_id)
    if entry is None or entry.seq != current.seq or await flow.runs.is_published(entry):
        return False
    await flow.runs.publish(entry)
    redriven.append(run_id)
    return True
