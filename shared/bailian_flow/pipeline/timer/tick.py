"""The timer's tick: poll what only polling can see, admit waiting runs, and re-drive what a lost event left behind.

Statuses are read in bulk (`bulk`: one list pass per resource family) and matched to the runs through the
resource ids in their state; the hint `runs/_timer-state.json` (`timer_state`) says what each run was last tick,
so a run whose remote status did not move and whose stage is not stale costs neither a Bailian call nor an OSS
read. The runs that need a look (status moved, stage stale, unknown to the hint, finished) are loaded and
advanced in a rotating order that starts where the last tick stopped, so every run gets its turn however many
there are; the tick stops starting new work when the function's timeout draws near, and records what it did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bailian_flow import obs
from bailian_flow.pipeline.protocol import admission, bulk, cancel, kinds
from bailian_flow.pipeline.protocol.admission import Room
from bailian_flow.pipeline.protocol.bulk import Listed
from bailian_flow.pipeline.protocol.layout import ENDING_PREFIX
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z, parse_iso_z, utc_now
from bailian_flow.pipeline.protocol.steps import POLLING, drive
from bailian_flow.pipeline.protocol.transitions import (
    ENDING,
    Current,
    end_of_life,
    ending_key,
    load,
    settle_marker,
)
from bailian_flow.pipeline.timer import redrive
from bailian_flow.pipeline.timer.quotas import COUNTERS, LISTS, admit_waiting
from bailian_flow.pipeline.timer.scan import adopt_orphans
from bailian_flow.pipeline.timer.timer_state import (
    Brief,
    CountingStore,
    QuotaUse,
    TimerState,
    read_timer_state,
    write_timer_state,
)
from bailian_flow.runlog import is_run_id

log = logging.getLogger("bailian_flow.pipeline")

# Leave this much of the timeout for finishing the run in hand, writing the hint and returning.
SAFETY_MARGIN_SECONDS = 10.0
# Listing may use at most this share of the time left: the runs whose status moved still need theirs.
LISTING_SHARE = 0.5
CONCURRENCY = 8
# An `ending/` marker this old whose run is neither ending nor ended lost its commit's race: it goes.
STRAY_AFTER = 300.0


# What to list when some runs are unknown to the hint: every family a polled stage follows by one id. Not batches:
# a tick with no batch run in its hint never loads the batch client (cold start), and a batch run unknown to the
# hint costs a GET per shard once.
def _families_of_unknown_runs() -> set[str]:
    return {family for spec in kinds.all_specs() for family, _, _ in spec.follows.values()}


@dataclass
class TickReport:
    active: int = 0
    polled: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    audited: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    undeployed: list[str] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)
    advanced: int = 0
    loaded: int = 0
    bailian_calls: int = 0
    oss_reads: int = 0
    oss_writes: int = 0
    seconds: float = 0.0
    # For the metrics line: the active runs the hint knows, by stage and by kind, and each quota's use.
    by_stage: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "active": self.active,
            "polled": self.polled,
            "redriven": self.redriven,
            "adopted": self.adopted,
            "finished": self.finished,
            "ended": self.ended,
            "audited": self.audited,
            "deferred": self.deferred,
            "undeployed": self.undeployed,
            "admitted": self.admitted,
            "counts": {
                "polled": len(self.polled),
                "loaded": self.loaded,
                "advanced": self.advanced,
                "admitted": len(self.admitted),
                "deferred": len(self.deferred),
                "bailian_calls": self.bailian_calls,
                "oss_reads": self.oss_reads,
                "oss_writes": self.oss_writes,
                "seconds": round(self.seconds, 3),
                "waiting": self.by_stage.get("waiting", 0),
                "redriven": len(self.redriven),
                "finished": len(self.finished),
                "by_stage": dict(self.by_stage),
                "by_kind": dict(self.by_kind),
                "quotas": {quota: dict(use) for quota, use in self.quotas.items()},
            },
        }


async def _visit(
    flow: Flow, run_id: str, current: Current, report: TickReport, ending: Mapping[str, float] | None = None
) -> Current | None:
    """Do what the run needs; returns its newest entry when the visit read it last (None: not read since)."""
    stage = current.state.stage
    ending = ending or {}
    if run_id in ending and not current.state.terminal and stage not in ENDING and ending[run_id] > STRAY_AFTER:
        # A marker whose ending commit lost its race (the run went on): not to be looked at every tick for ever.
        # Only an old one: a young one may precede a commit still on its way.
        await flow.store.delete(ending_key(run_id))
    if current.state.terminal:
        # A retry may have revived the run since it was read: `settle_marker` keeps it active then. An `ending/`
        # marker left by a crash after the terminal commit goes too.
        if run_id in ending:
            await flow.store.delete(ending_key(run_id))
        if await settle_marker(flow, run_id):
            report.finished.append(run_id)
    elif stage in POLLING:
        latest = await drive(flow, current, POLLING)
        report.polled.append(run_id)
        report.advanced += 1
        return latest
    elif stage == "waiting":
        await admission.ensure_in_line(flow, current.state)  # its marker may have been lost to a crash
    elif stage in ENDING:
        # An end of life not landed yet (a refused or failed undo, a cancel waiting out a lease): tried every tick.
        may_end = stage != "canceling" or cancel.finalizable(flow, current)
        if may_end and await end_of_life(flow, current) is not None:
            report.ended.append(run_id)
    else:
        await redrive.if_lost(flow, current, report.redriven)
    return None


def _rotated(run_ids: list[str], cursor: str | None) -> list[str]:
    """The runs starting at `cursor` (where the last tick stopped), wrapping around."""
    if cursor is None or cursor not in run_ids:
        return run_ids
    start = run_ids.index(cursor)
    return run_ids[start:] + run_ids[:start]


def _moved(flow: Flow, brief: Brief) -> bool:
    """Whether a polled run needs a look: a status it follows moved, or is not where the lists say, or it follows
    nothing (work may be due: a batch run with no shard in flight has one to submit or results to merge)."""
    if not brief.follows:
        return True
    for key, status in brief.follows.items():
        seen = flow.seen.get(key)
        if seen is None:
            # Gone from a complete list (the poll step fails the run), or not listed this tick (polled by a GET).
            return True
        if status is None:
            if str(seen.status) not in ("PENDING", "RUNNING"):
                return True
        elif str(seen.status) != status:
            return True
    return False


def _needs_look(
    flow: Flow, run_id: str, brief: Brief | None, listed: Listed, in_line: set[str], ending: Mapping[str, float]
) -> bool:
    """Whether a run must be loaded this tick. Only two kinds are skipped: a polled run whose status has not moved,
    and a waiting run still in its line (admission reads the lines; a run out of line was admitted or cancelled
    since, perhaps by another tick, or lost its marker). A run between two events is looked at every tick: it is
    normally in that state for seconds, so few are, and an event chain may have moved it on since. A run whose end
    of life has not landed (its `ending/` marker) is looked at every tick, whatever its brief remembers: a cancel
    committed by the API after the last tick leaves a brief that still says `training`."""
    if brief is None or run_id in ending:
        return True
    if brief.stage in POLLING:
        return _moved(flow, brief)
    return brief.stage != "waiting" or run_id not in in_line


async def tick(flow: Flow) -> TickReport:
    report = TickReport()
    started = time.monotonic()
    counting = CountingStore(flow.store)
    plain, flow.store, flow.runs.store = flow.store, counting, counting
    calls_before = flow.client.requests_sent
    try:
        await _tick(flow, report)
    finally:
        flow.store = flow.runs.store = plain
        report.oss_reads, report.oss_writes = counting.reads, counting.writes
        report.bailian_calls = flow.client.requests_sent - calls_before
        report.seconds = time.monotonic() - started
    return report


async def _tick(flow: Flow, report: TickReport) -> None:
    try:
        report.adopted = await adopt_orphans(flow)
    except Exception:
        # The scan is a safety net; the runs in hand matter more than one tick's scan.
        log.exception("scan for datasets without a run failed")
    prefix = flow.settings.runs_prefix
    hint = await read_timer_state(flow.store, prefix)
    run_ids = await flow.runs.list_active()
    # Runs whose end of life has not landed: looked at every tick (a marker without an active one is settled).
    now = utc_now()
    ending = {
        info.key[len(ENDING_PREFIX) :]: (now - info.last_modified).total_seconds()
        async for info in flow.store.list(ENDING_PREFIX)
        if is_run_id(info.key[len(ENDING_PREFIX) :])
    }
    run_ids += sorted(set(ending) - set(run_ids))
    report.active = len(run_ids)
    briefs = {run_id: hint.runs[run_id] for run_id in run_ids if run_id in hint.runs}

    listed = Listed()
    until = time.monotonic() + max(flow.remaining() - SAFETY_MARGIN_SECONDS, 0.0) * LISTING_SHARE
    families = {key.partition(":")[0] for brief in briefs.values() for key in brief.follows}
    if len(briefs) < len(run_ids):
        # Runs the hint does not know may be in any polled stage: one list of each family beats a GET per run.
        families |= _families_of_unknown_runs()
    await bulk.list_families(flow, families, listed, until)

    in_line: set[str] = set()
    try:
        admitted = await admit_waiting(flow, list(briefs.values()), listed, until)
        in_line = admitted.in_line
        report.admitted = [state.run_id for state in admitted.states]
        for state in admitted.states:
            briefs[state.run_id] = Brief.of(state, utc_now())
        rooms = {**await _listed_use(flow, list(briefs.values()), listed), **admitted.rooms}
        hint.quotas = {quota: QuotaUse.of(room) for quota, room in rooms.items()}
    except Exception:
        log.exception("admission of waiting runs failed")

    todo: list[str] = []
    for run_id in _rotated(run_ids, hint.cursor):
        if _needs_look(flow, run_id, briefs.get(run_id), listed, in_line, ending):
            todo.append(run_id)
        elif briefs[run_id].stage in POLLING:
            report.polled.append(run_id)  # its status, read in bulk, has not moved
    hint.cursor = await _visit_all(flow, todo, briefs, report, ending)
    await _audit(flow, hint, set(run_ids), report)
    try:
        # DONE runs are off the active list; those whose deployment has a TTL wait in their own index.
        from bailian_flow.pipeline.delivery.lifecycle import expire_deployments

        report.undeployed = await expire_deployments(flow)
    except Exception:
        log.exception("expiring deployments failed; the next tick tries again")
    hint.runs = {run_id: briefs[run_id] for run_id in run_ids if run_id in briefs}
    report.by_stage = dict(Counter(brief.stage for brief in hint.runs.values()))
    report.by_kind = dict(Counter(brief.kind for brief in hint.runs.values()))
    report.quotas = {quota: use.counts() for quota, use in hint.quotas.items()}
    await write_timer_state(flow.store, prefix, hint)


async def _listed_use(flow: Flow, briefs: list[Brief], listed: Listed) -> dict[str, Room]:
    """The use of each quota whose list this tick read whole anyway (for the metrics line and the status page): no
    list is read for it, and a kind's counter is loaded only when its list was read (its runs are in flight)."""
    counters: dict[str, tuple[str, str | None]] = {quota: (LISTS[quota], None) for quota in COUNTERS}
    for spec in kinds.all_specs():
        for quota, declared in spec.quotas.items():
            counters.setdefault(quota, (declared.family, declared.counter))
    rooms: dict[str, Room] = {}
    for quota, (family, named) in counters.items():
        if family not in listed.complete:
            continue
        counter = COUNTERS[quota] if named is None else kinds.named(named)
        room = await counter(flow, briefs, listed)
        if room is not None:
            rooms[quota] = room
    return rooms


async def _audit(flow: Flow, hint: TimerState, active: set[str], report: TickReport) -> None:
    """One slice of the backstop audit (`timer.audit`), at most every `audit_every_seconds`."""
    from bailian_flow.pipeline.timer.audit import audit

    last = parse_iso_z(hint.audited_at) if hint.audited_at else None
    due = last is None or (utc_now() - last).total_seconds() >= flow.settings.audit_every_seconds
    if not due or flow.remaining() < SAFETY_MARGIN_SECONDS:
        return
    try:
        report.audited, hint.audit = await audit(flow, hint.audit, active)
    except Exception:
        log.exception("audit of Bailian's lists failed; the next one tries again")
    hint.audited_at = iso_z()


async def _clear_unborn(flow: Flow, run_id: str, ending: Mapping[str, float]) -> None:
    """Markers of a run that never got its first entry (its invocation died between the marker and the commit, and
    no retry came): once older than a lease, no create can still be on its way, so they go; a retry of the event
    starts over and marks the run again."""
    info = await flow.store.head(flow.runs.active_key(run_id))
    if info is not None and (utc_now() - info.last_modified).total_seconds() > flow.lease_seconds:
        await flow.runs.clear_active(run_id)
        if await load(flow, run_id) is not None:
            await flow.runs.mark_active(run_id)  # its first entry landed after all
    if ending.get(run_id, 0.0) > STRAY_AFTER:
        await flow.store.delete(ending_key(run_id))


async def _visit_all(
    flow: Flow, todo: list[str], briefs: dict[str, Brief], report: TickReport, ending: Mapping[str, float]
) -> str | None:
    """Load and advance the runs that need a look, in order, until time or budget runs out.

    Returns the first run left for the next tick (its turn comes first then), or None when all were visited.
    """
    budget = flow.settings.timer_visit_budget
    queue: asyncio.Queue[str] = asyncio.Queue()
    for run_id in todo:
        queue.put_nowait(run_id)
    left: list[str] = []

    async def worker() -> None:
        while not queue.empty():
            run_id = queue.get_nowait()
            if flow.remaining() < SAFETY_MARGIN_SECONDS or (budget is not None and report.loaded >= budget):
                left.append(run_id)
                continue
            report.loaded += 1
            try:
                with obs.bind(run_id=run_id):
                    current = await load(flow, run_id)
                    if current is None:
                        await _clear_unborn(flow, run_id, ending)
                        continue
                    with obs.bind(kind=current.state.kind, stage=current.state.stage):
                        visited = await _visit(flow, run_id, current, report, ending)
                    latest = visited or await load(flow, run_id)
            except Exception:
                # One run's trouble must not starve the others; the next tick tries it again.
                with obs.bind(run_id=run_id):
                    log.exception("run %s: timer visit failed", run_id)
                left.append(run_id)
                continue
            if latest is None or (latest.state.terminal and run_id in report.finished):
                briefs.pop(run_id, None)
            else:
                briefs[run_id] = Brief.of(latest.state, latest.at)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    order = {run_id: index for index, run_id in enumerate(todo)}
    report.deferred = sorted(left, key=order.__getitem__)
    return report.deferred[0] if report.deferred else None
