"""The state machine: given a run's newest entry, do the next thing, exactly once.

Every handler calls `advance` with the stages it is willing to act on; each step either commits the next entry
(win or lose, the loop re-reads) or says there is nothing to do now. Side effects follow intent → act → record:
a step first claims the next sequence number with an intent entry, and only the delivery that won the claim
calls Bailian. Finding an intent it did not write, younger than the lease, a delivery leaves it to its owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bailian_flow.pipeline.protocol.kinds import handled_by, intents, named, polled, spec_of
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import Current, Outcome, claim, load

Step = Callable[[Flow, Current], Awaitable[Outcome]]

# The stages each function acts on, for any kind (`protocol/kinds.py`).
ON_UPLOAD: frozenset[str] = handled_by("on_upload")
ON_FILE_READY: frozenset[str] = handled_by("on_file_ready")
ON_SUCCESS: frozenset[str] = handled_by("on_success")
POLLING: frozenset[str] = polled()


def step_of(kind: str, stage: str) -> Step:
    """The step a fact stage of `kind` takes, imported when a run first reaches it: a handler loads only the stages
    its runs are in (on_file_ready never imports the upload, delivery or batch code)."""
    step: Step = named(spec_of(kind).facts[stage])
    return step


def resume_of(kind: str, stage: str) -> Callable[[Flow, Current], Awaitable[None]]:
    """The act an intent of `kind` stands for."""
    act: Callable[[Flow, Current], Awaitable[None]] = named(spec_of(kind).acts[stage])
    return act


async def resume_intent(flow: Flow, current: Current) -> Outcome:
    """An intent its actor released, or whose lease ran out: claim it anew (a new generation), look up, then act.

    Never on writer identity alone: FC's retry of a timed-out invocation carries the same request id while the
    first may still be running, its create unseen in a lagging list. A slow actor past its lease is harmless, as
    results are fenced on the log (`transitions.record`): whichever result is committed first stays, the other
    actor undoes its own.
    """
    if not current.state.released and not current.lease_over(flow):
        return "stop"
    state = current.state
    reclaimed = await claim(flow, current, state.stage, f"resuming {state.stage} (previous attempt unfinished)")
    if reclaimed is not None:
        await resume_of(state.kind, state.stage)(flow, reclaimed)
    return "again"


async def advance(flow: Flow, run_id: str, acts: frozenset[str], *, max_steps: int = 12) -> RunState | None:
    """Drive the run forward while its stage is one this handler acts on."""
    current = await drive(flow, await load(flow, run_id), acts, max_steps=max_steps)
    return None if current is None else current.state


async def drive(flow: Flow, current: Current | None, acts: frozenset[str], *, max_steps: int = 12) -> Current | None:
    """`advance` from an entry the caller has just read; returns the newest entry read after the last step.

    Saves the caller (the timer) a second read of the same log before and after: acting on an entry read a
    moment ago is safe, as every write is fenced (create-only at the next seq; a write that loses is re-read).
    """
    for _ in range(max_steps):
        if current is None or current.state.stage not in acts:
            break
        state = current.state
        step = resume_intent if state.stage in intents() else step_of(state.kind, state.stage)
        outcome = await step(flow, current)
        current = await load(flow, current.state.run_id)
        if outcome == "stop":
            break
    return current
