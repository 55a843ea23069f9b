"""The timer's tick: poll what only polling can see, and re-drive what a lost event left behind.

Runs are taken oldest first and the tick stops starting new work when the function's timeout draws near; what
it did not reach waits for the next tick. The client's rate limiter keeps the polls under Bailian's QPS.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from bailian_flow.pipeline import cancel
from bailian_flow.pipeline.quotas import Listed, admit_waiting
from bailian_flow.pipeline.runtime import MAX_REDRIVES, Flow
from bailian_flow.pipeline.scan import adopt_orphans
from bailian_flow.pipeline.state import INTENTS, RunError
from bailian_flow.pipeline.steps import POLLING, REANNOUNCE_AS, advance
from bailian_flow.pipeline.transitions import Current, commit, fail, load, settle_marker

log = logging.getLogger("bailian_flow.pipeline")

# Stages that wait for an OSS event to chain the next function (`received` is acted on by its writer directly).
CHAINED: frozenset[str] = frozenset({"received", "requested", "file-ready", "job-succeeded", "batch-ready"})
# Of those, the ones whose own stage marker is that event.
TRIGGERING: frozenset[str] = frozenset({"requested", "file-ready", "job-succeeded", "batch-ready"})
# Leave this much of the timeout for finishing the run in hand and returning.
SAFETY_MARGIN_SECONDS = 10.0
CONCURRENCY = 4


@dataclass
class TickReport:
    active: int = 0
    polled: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    undeployed: list[str] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "active": self.active,
            "polled": self.polled,
            "redriven": self.redriven,
            "adopted": self.adopted,
            "finished": self.finished,
            "deferred": self.deferred,
            "undeployed": self.undeployed,
            "admitted": self.admitted,
        }


async def _redrive(flow: Flow, current: Current, report: TickReport) -> None:
    """Make a stuck stage's OSS event fire again.

    A stage marker lost to a crash between commit and marker is simply written now. A marker that exists but went
    unanswered (the event or its function was lost) gets a fresh entry re-announcing the stage: a new object, so a
    new event.
    """
    state = current.state
    if state.stage in TRIGGERING:
        entry = await flow.runs.latest(state.run_id)
        if entry is not None and entry.seq == current.seq and not await flow.runs.is_published(entry):
            await flow.runs.publish(entry)
            report.redriven.append(state.run_id)
            return
    if state.redrives >= MAX_REDRIVES:
        reason = f"stuck at {state.stage} after {state.redrives} re-drives; see the function logs"
        await fail(flow, current, RunError(reason=reason, code="Stuck", retryable=True))
        return
    stage = REANNOUNCE_AS[state.stage]
    changed = f"re-announced {stage}: no progress for {current.age():.0f}s"
    if await commit(flow, current, stage, changed, redrives=state.redrives + 1) is not None:
        report.redriven.append(state.run_id)


async def _visit(flow: Flow, run_id: str, current: Current, report: TickReport) -> None:
    stage = current.state.stage
    if current.state.terminal:
        # A retry may have revived the run since it was read: `settle_marker` keeps it active then.
        if await settle_marker(flow, run_id):
            report.finished.append(run_id)
    elif stage in POLLING:
        await advance(flow, run_id, POLLING)
        report.polled.append(run_id)
    elif stage == "canceling":
        if cancel.finalizable(flow, current) and await cancel.finalize(flow, current) is not None:
            report.polled.append(run_id)
    elif _stale(flow, current):
        await _redrive(flow, current, report)


def _stale(flow: Flow, current: Current) -> bool:
    """An intent past its lease (its actor died), or a stage whose event nobody answered."""
    stage, age = current.state.stage, current.age()
    if stage in INTENTS:
        return age > flow.lease_seconds
    return stage in CHAINED and age > flow.redrive_after_seconds


async def tick(flow: Flow) -> TickReport:
    report = TickReport()
    try:
        report.adopted = await adopt_orphans(flow)
    except Exception:
        # The scan is a safety net; the runs in hand matter more than one tick's scan.
        log.exception("scan for datasets without a run failed")
    run_ids = await flow.runs.list_active()
    report.active = len(run_ids)
    loaded = await asyncio.gather(*(load(flow, run_id) for run_id in run_ids))
    # Oldest first: the run that waited longest is served before the tick runs out of time.
    pending = sorted(
        ((run_id, current) for run_id, current in zip(run_ids, loaded, strict=True) if current is not None),
        key=lambda item: item[1].at,
    )
    try:
        admitted = await admit_waiting(flow, [current.state for _, current in pending], Listed())
        report.admitted = admitted.runs
    except Exception:
        log.exception("admission of waiting runs failed")
    queue: asyncio.Queue[tuple[str, Current]] = asyncio.Queue()
    for item in pending:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            run_id, current = queue.get_nowait()
            if flow.remaining() < SAFETY_MARGIN_SECONDS:
                report.deferred.append(run_id)
                continue
            try:
                await _visit(flow, run_id, current, report)
            except Exception:
                # One run's trouble must not starve the others; the next tick tries it again.
                log.exception("run %s: timer visit failed", run_id)
                report.deferred.append(run_id)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    try:
        # DONE runs are off the active list; those whose deployment has a TTL wait in their own index.
        from bailian_flow.pipeline.lifecycle import expire_deployments

        report.undeployed = await expire_deployments(flow)
    except Exception:
        log.exception("expiring deployments failed; the next tick tries again")
    return report
