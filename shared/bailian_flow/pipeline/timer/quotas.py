"""How full each account quota is, counted by the timer from Bailian's own lists, and the tick's admission pass.

The service is the truth: a quota's use is what its list shows (every account resource counts, not only the
pipeline's), plus the runs already let through that have not made their resource yet (they would otherwise be
counted twice over: admitted now, and again next tick before their create). A count that is off only makes a
run meet the quota once more and go back to its place in line.

`COUNTERS` maps a quota to its counter (and `LISTS` to the bulk list it reads); a run kind adds its own through
its spec (`KindSpec.quotas`, e.g. the batch kind's `batches`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bailian_flow.pipeline.protocol import admission, bulk, kinds
from bailian_flow.pipeline.protocol.admission import Room
from bailian_flow.pipeline.protocol.bulk import Listed
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.timer.timer_state import Brief

log = logging.getLogger("bailian_flow.pipeline")

# Fine-tune jobs that no longer hold a slot (the service counts running and succeeded ones).
FREED_JOB_STATUSES = frozenset({"FAILED", "CANCELED"})


# (flow, what the timer knows of every active run, the tick's lists) -> the quota's room, None when uncountable.
Counter = Callable[[Flow, Sequence[Brief], Listed], Awaitable[Room | None]]


async def count_jobs(flow: Flow, briefs: Sequence[Brief], listed: Listed) -> Room | None:
    if listed.jobs is None or bulk.FINE_TUNES not in listed.complete:
        return None
    used = sum(1 for job in listed.jobs if str(job.status) not in FREED_JOB_STATUSES)
    used += len(admission.about_to_take(briefs, admission.FINE_TUNE_JOBS, "starting-job"))
    return Room(used=used, limit=flow.settings.quota_fine_tune_jobs)


async def count_training(flow: Flow, briefs: Sequence[Brief], listed: Listed) -> Room | None:
    """Trainings under way (every job not ended) against `quota_training_slots` (service-contract.md#C8)."""
    if listed.jobs is None or bulk.FINE_TUNES not in listed.complete:
        return None
    used = sum(1 for job in listed.jobs if not job.is_terminal)
    used += len(admission.about_to_take(briefs, admission.TRAINING_SLOT, "starting-job"))
    return Room(used=used, limit=flow.settings.quota_training_slots)


async def count_files(flow: Flow, briefs: Sequence[Brief], listed: Listed) -> Room | None:
    if listed.files is None or bulk.FILES not in listed.complete:
        return None
    pending = admission.about_to_take(briefs, admission.FILES, "uploading")
    return Room(
        used=len(listed.files) + len(pending),
        limit=flow.settings.quota_files,
        bytes_used=sum(info.size or 0 for info in listed.files) + sum(brief.size or 0 for brief in pending),
        bytes_limit=flow.settings.quota_file_bytes,
    )


COUNTERS: dict[str, Counter] = {
    admission.FINE_TUNE_JOBS: count_jobs,
    admission.FILES: count_files,
    admission.TRAINING_SLOT: count_training,
}
# The bulk list each counter reads.
LISTS: dict[str, str] = {
    admission.FINE_TUNE_JOBS: bulk.FINE_TUNES,
    admission.FILES: bulk.FILES,
    admission.TRAINING_SLOT: bulk.FINE_TUNES,
}


def _lazy(spec: str) -> Counter:
    """A kind's counter, imported only when its quota has a line."""

    async def count(flow: Flow, briefs: Sequence[Brief], listed: Listed) -> Room | None:
        counter: Counter = kinds.named(spec)
        return await counter(flow, briefs, listed)

    return count


@dataclass
class Admitted:
    states: list[RunState] = field(default_factory=list)
    rooms: dict[str, Room] = field(default_factory=dict)
    # Runs that are in a line after this pass: a waiting run not among them left the line (or never joined it).
    in_line: set[str] = field(default_factory=set)


async def admit_waiting(flow: Flow, briefs: Sequence[Brief], listed: Listed, until: float) -> Admitted:
    """Let the oldest waiting runs go, per quota, up to what is free now (lists still missing are read by `until`)."""
    result = Admitted()
    counters, families = dict(COUNTERS), dict(LISTS)
    for spec in kinds.all_specs():
        for quota, declared in spec.quotas.items():
            counters[quota] = _lazy(declared.counter)
            families[quota] = declared.family
    lines = {quota: await admission.line(flow, quota) for quota in counters}
    result.in_line = {admission.run_of(key) for keys in lines.values() for key in keys}
    wanted = {quota for quota, keys in lines.items() if keys}
    if not wanted:
        return result
    await bulk.list_families(flow, {families[quota] for quota in wanted if quota in families}, listed, until)
    for quota in sorted(wanted):
        room = await counters[quota](flow, briefs, listed)
        if room is None:
            continue
        result.rooms[quota] = Room(room.used, room.limit, room.bytes_used, room.bytes_limit)
        admitted = await admission.admit(flow, quota, room)
        result.states += admitted
        result.in_line -= {state.run_id for state in admitted}
    return result
