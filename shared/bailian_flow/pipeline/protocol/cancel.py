"""Canceling a run so that nothing it started can land afterwards.

Two steps. `canceling` (not terminal) is committed first: results are committed only on top of their intent
(`transitions.record`), so from that entry on every in-flight act loses and undoes what it made. Then the run's end
of life (`transitions.end_of_life`, the same for every failure) undoes everything it made, by its records and by
name, and commits `canceled`. When an act may still be in flight (the run was at an intent younger than its lease)
a resource it makes may not be listed yet, so the end waits out its lease (`act_since`). An undo Bailian refuses
for now (an import still running) or a call that failed keeps the run `canceling`; the timer tries again every
tick (its `ending/` marker), each try in the run's history.
"""

from __future__ import annotations

from bailian_flow.pipeline.protocol import cleanup
from bailian_flow.pipeline.protocol.kinds import intents
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z, parse_iso_z, utc_now
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import Current, begin_ending, end_of_life, note


def act_may_be_in_flight(flow: Flow, current: Current) -> bool:
    """Whether an actor may still be creating something for this run (an intent it holds, lease not run out)."""
    state = current.state
    return state.stage in intents() and not state.released and not current.lease_over(flow)


def finalizable(flow: Flow, current: Current) -> bool:
    """A `canceling` run whose end may land now: any act in flight when it was written has had its lease.

    Measured from when that act's intent was written (`act_since`), not from the newest entry: every try of the
    end adds a history entry, which must not push the end back."""
    state = current.state
    if state.stage != "canceling":
        return False
    if state.act_since is None:
        return True
    since = parse_iso_z(state.act_since)
    return flow.settings.lease_over((utc_now() - since).total_seconds(), since)


async def begin(flow: Flow, current: Current, why: str) -> tuple[Current, bool] | None:
    """Commit `canceling` on top of `current`; the new entry and whether to wait before finalizing (None: lost)."""
    wait = act_may_be_in_flight(flow, current)
    changed = f"canceling: {why}" + (f"; waiting out the lease of {current.state.stage}" if wait else "")
    since = iso_z(current.at) if wait else None
    canceling = await begin_ending(
        flow, current, "canceling", changed, canceled_from=current.state.stage, act_since=since
    )
    if canceling is None:
        return None
    return canceling, wait


async def undo_visible(flow: Flow, current: Current) -> None:
    """Stop what can be seen running now, while an act may still be in flight; files wait for the end."""
    swept = await cleanup.undo_all(flow, current.state, kinds=("job", "deployment", "import"))
    if swept.acts:
        await note(flow, current.state.run_id, f"canceling: {'; '.join(swept.acts)}")


async def finalize(flow: Flow, current: Current) -> RunState | None:
    """The end of life: undo everything the run made, then commit `canceled` (None: not yet, or another writer
    came first; the timer tries again)."""
    return await end_of_life(flow, current)
