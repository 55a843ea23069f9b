"""How full each account quota is, counted by the timer from Bailian's own lists, and the tick's admission pass.

The service is the truth: a quota's use is what its list shows (every account resource counts, not only the
pipeline's), plus the runs already let through that have not made their resource yet (they would otherwise be
counted twice over: admitted now, and again next tick before their create). A count that is off only makes a
run meet the quota once more and go back to its place in line.

`COUNTERS` maps a quota to its counter; another run kind adds its own (for example `batches`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bailian_flow.client.errors import BailianError
from bailian_flow.pipeline import admission
from bailian_flow.pipeline.admission import Room
from bailian_flow.pipeline.runtime import Flow
from bailian_flow.pipeline.state import RunState

if TYPE_CHECKING:
    from bailian_flow.client.models import FileInfo, FineTuneJob

log = logging.getLogger("bailian_flow.pipeline")

# Fine-tune jobs that no longer hold a slot (the service counts running and succeeded ones).
FREED_JOB_STATUSES = frozenset({"FAILED", "CANCELED"})


@dataclass
class Listed:
    """Bailian's lists as one tick read them (None: not read, or not read to the end)."""

    jobs: list[FineTuneJob] | None = None
    files: list[FileInfo] | None = None
    calls: int = 0
    extra: dict[str, object] = field(default_factory=dict)


Counter = Callable[[Flow, Sequence[RunState], Listed], Awaitable[Room | None]]


def _about_to_take(states: Sequence[RunState], quota: str, intent: str) -> list[RunState]:
    """Runs that passed the line for `quota` and have not made their resource yet."""
    return [state for state in states if state.stage == intent or _admitted_pending(state, quota)]


def _admitted_pending(state: RunState, quota: str) -> bool:
    waiting = state.waiting
    return admission.admitted_for(state, quota) and waiting is not None and state.stage == waiting.redo


async def count_jobs(flow: Flow, states: Sequence[RunState], listed: Listed) -> Room | None:
    if listed.jobs is None:
        return None
    used = sum(1 for job in listed.jobs if str(job.status) not in FREED_JOB_STATUSES)
    used += len(_about_to_take(states, admission.FINE_TUNE_JOBS, "starting-job"))
    return Room(used=used, limit=flow.settings.quota_fine_tune_jobs)


async def count_files(flow: Flow, states: Sequence[RunState], listed: Listed) -> Room | None:
    if listed.files is None:
        return None
    pending = _about_to_take(states, admission.FILES, "uploading")
    return Room(
        used=len(listed.files) + len(pending),
        limit=flow.settings.quota_files,
        bytes_used=sum(info.size or 0 for info in listed.files) + sum(state.source.size or 0 for state in pending),
        bytes_limit=flow.settings.quota_file_bytes,
    )


COUNTERS: dict[str, Counter] = {admission.FINE_TUNE_JOBS: count_jobs, admission.FILES: count_files}


async def list_for_admission(flow: Flow, listed: Listed, wanted: set[str]) -> None:
    """Read the lists a counter needs that the tick has not read yet."""
    try:
        if admission.FINE_TUNE_JOBS in wanted and listed.jobs is None:
            listed.jobs = [job async for job in flow.client.fine_tunes.list(page_size=100)]
        if admission.FILES in wanted and listed.files is None:
            listed.files = [info async for info in flow.client.files.list()]
    except BailianError as exc:
        # Nobody is admitted on a count we could not make; the next tick counts again.
        log.warning("could not count quota use: %s", type(exc).__name__)


@dataclass
class Admitted:
    runs: list[str] = field(default_factory=list)
    rooms: dict[str, Room] = field(default_factory=dict)


async def admit_waiting(flow: Flow, states: Sequence[RunState], listed: Listed) -> Admitted:
    """Let the oldest waiting runs go, per quota, up to what is free now."""
    result = Admitted()
    for state in states:
        if state.stage == "waiting":
            await admission.ensure_in_line(flow, state)
    wanted = {quota for quota in COUNTERS if await admission.line(flow, quota)}
    if not wanted:
        return result
    await list_for_admission(flow, listed, wanted)
    for quota in sorted(wanted):
        room = await COUNTERS[quota](flow, states, listed)
        if room is None:
            continue
        result.rooms[quota] = Room(room.used, room.limit, room.bytes_used, room.bytes_limit)
        result.runs += await admission.admit(flow, quota, room)
    return result
