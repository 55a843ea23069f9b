"""Canceling a run so that nothing it started can land afterwards.

Two steps. `canceling` (not terminal) is committed first: results are committed only on top of their intent
(`transitions.record`), so from that entry on every in-flight act loses and undoes what it made. Then the run is
finalized to `canceled` after a sweep that cancels the run's fine-tunes and deletes its files, deployments and
imports, found by name and by record. When an act may still be in flight (the run was at an intent younger than
its lease) a resource it makes may not be listed yet, so finalizing waits out that lease: the timer does it, and
the run stays on the timer's list until then. Every act lands in the run's history.
"""

from __future__ import annotations

from bailian_flow.pipeline.protocol import cleanup
from bailian_flow.pipeline.protocol.kinds import intents, spec_of
from bailian_flow.pipeline.protocol.runtime import Flow, utc_now
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import Current, commit, note


def act_may_be_in_flight(flow: Flow, current: Current) -> bool:
    """Whether an actor may still be creating something for this run (an intent it holds, lease not run out)."""
    state = current.state
    return state.stage in intents() and not state.released and not current.lease_over(flow)


def finalizable(flow: Flow, current: Current) -> bool:
    """A `canceling` run the timer may finalize: any act in flight when it was written has had its lease."""
    return current.state.stage == "canceling" and current.lease_over(flow)


async def begin(flow: Flow, current: Current, why: str) -> tuple[Current, bool] | None:
    """Commit `canceling` on top of `current`; the new entry and whether to wait before finalizing (None: lost)."""
    wait = act_may_be_in_flight(flow, current)
    changed = f"canceling: {why}" + (f"; waiting out the lease of {current.state.stage}" if wait else "")
    written = await commit(flow, current, "canceling", changed, canceled_from=current.state.stage)
    if written is None:
        return None
    return Current(seq=current.seq + 1, state=written, at=utc_now(), writer=flow.writer), wait


async def _stop(flow: Flow, state: RunState, kinds: tuple[cleanup.Kind, ...]) -> list[str]:
    # The run's kind stops what its own records name first, and says which of its resources the sweep must find.
    stop = spec_of(state.kind).hook("stop")
    if stop is not None:
        kinds = await stop(flow, state, kinds)
    return await cleanup.sweep(flow, state, kinds=kinds)


async def undo_visible(flow: Flow, current: Current) -> None:
    """Stop what can be seen running now, while an act may still be in flight; files wait for the final sweep."""
    acts = await _stop(flow, current.state, ("job", "deployment", "import"))
    if acts:
        await note(flow, current.state.run_id, f"canceling: {'; '.join(acts)}")


async def stop_all(flow: Flow, state: RunState) -> list[str]:
    """Stop and delete everything the run made on Bailian, recorded or found by its tag; what was done, as text."""
    return await _stop(flow, state, ("job", "import", "deployment", "file"))


async def finalize(flow: Flow, current: Current) -> RunState | None:
    """Sweep everything the run made, then commit `canceled` (None: another writer came first; re-read)."""
    acts = await stop_all(flow, current.state)
    changed = "canceled: " + ("; ".join(acts) if acts else "nothing on Bailian to undo")
    return await commit(flow, current, "canceled", changed)
