"""The state machine: given a run's newest entry, do the next thing, exactly once.

Every handler calls `advance` with the stages it is willing to act on; each step either commits the next entry
(win or lose, the loop re-reads) or says there is nothing to do now. Side effects follow intent → act → record:
a step first claims the next sequence number with an intent entry, and only the delivery that won the claim
calls Bailian. Finding an intent it did not write, younger than the lease, a delivery leaves it to its owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import INTENTS, RunState, Stage
from bailian_flow.pipeline.protocol.transitions import Current, Outcome, claim, load

Step = Callable[[Flow, Current], Awaitable[Outcome]]

# What the timer writes to re-drive a stuck stage: the fact an intent follows (or the stage itself), spelled so
# that its event reaches the function that acts on it. `received` has no trigger of its own (on_upload writes it
# while already at work), so a stuck upload is re-announced as `requested`.
REANNOUNCE_AS: dict[str, Stage] = {
    "received": "requested",
    "requested": "requested",
    "uploading": "requested",
    "file-ready": "file-ready",
    "starting-job": "file-ready",
    "job-succeeded": "job-succeeded",
    "importing": "job-succeeded",
    "deploying": "job-succeeded",
    "batch-planning": "requested",
    "batch-ready": "batch-ready",
    "batch-submitting": "batch-ready",
    "batch-collecting": "batch-ready",
    "batch-merging": "batch-ready",
}

# The stages each function acts on.
ON_UPLOAD: frozenset[str] = frozenset(
    {
        "received",
        "requested",
        "uploading",
        # Batch runs: planning, and the work the timer hands over through `batch-ready`.
        "batch-planning",
        "batch-ready",
        "batch-submitting",
        "batch-collecting",
        "batch-merging",
    }
)
ON_FILE_READY: frozenset[str] = frozenset({"file-ready", "starting-job"})
ON_SUCCESS: frozenset[str] = frozenset({"job-succeeded", "importing", "deploying"})
POLLING: frozenset[str] = frozenset({"training", "import-running", "deployment-pending", "batch-running"})

# Each stage's step as "<module under pipeline/>:<function>", imported when a run first reaches it: a handler
# loads only the stages its runs are in (on_file_ready never imports the upload, delivery or batch code).
FACT_STEPS: dict[str, str] = {
    "received": "kinds.fine_tune.upload:step_received",
    "requested": "kinds.fine_tune.upload:step_received",
    "file-ready": "kinds.fine_tune.training:step_file_ready",
    "job-succeeded": "delivery.stages:step_job_succeeded",
    "training": "kinds.fine_tune.training:poll_training",
    "import-running": "delivery.stages:poll_import",
    "deployment-pending": "delivery.stages:poll_deployment",
}
# A batch run shares the first and terminal stages with fine-tunes, and has steps of its own for the rest.
BATCH_FACT_STEPS: dict[str, str] = {
    "received": "kinds.batch.stages:step_batch_received",
    "requested": "kinds.batch.stages:step_batch_received",
    "batch-running": "kinds.batch.stages:poll_batch_run",
    "batch-ready": "kinds.batch.stages:step_batch_ready",
}
RESUMES: dict[str, str] = {
    "uploading": "kinds.fine_tune.upload:act_upload",
    "starting-job": "kinds.fine_tune.training:act_start_job",
    "importing": "delivery.stages:act_import",
    "deploying": "delivery.stages:act_deploy",
}


def _named(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(import_module(f"bailian_flow.pipeline.{module}"), name)


def step_of(spec: str) -> Step:
    step: Step = _named(spec)
    return step


def resume_of(stage: str) -> Callable[[Flow, Current], Awaitable[None]]:
    """The act an intent stands for; the batch intents' table lives with the batch stages."""
    if stage not in RESUMES:
        from bailian_flow.pipeline.kinds.batch.stages import RESUME_BATCH

        return RESUME_BATCH[stage]
    act: Callable[[Flow, Current], Awaitable[None]] = _named(RESUMES[stage])
    return act


async def resume_intent(flow: Flow, current: Current) -> Outcome:
    """An intent its actor released, or whose lease ran out: claim it anew (a new generation), look up, then act.

    Never on writer identity alone: FC's retry of a timed-out invocation carries the same request id while the
    first may still be running, its create unseen in a lagging list. A slow actor past its lease is harmless, as
    results are fenced on the log (`transitions.record`): whichever result is committed first stays, the other
    actor undoes its own.
    """
    if not current.state.released and current.age() < flow.lease_seconds:
        return "stop"
    state = current.state
    reclaimed = await claim(flow, current, state.stage, f"resuming {state.stage} (previous attempt unfinished)")
    if reclaimed is not None:
        await resume_of(state.stage)(flow, reclaimed)
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
        stage = current.state.stage
        facts = BATCH_FACT_STEPS if current.state.kind == "batch" else FACT_STEPS
        step = resume_intent if stage in INTENTS else step_of(facts[stage])
        outcome = await step(flow, current)
        current = await load(flow, current.state.run_id)
        if outcome == "stop":
            break
    return current
