"""Admission: a run that an account quota keeps from starting waits in line instead of failing.

The hook every run kind uses, for any quota (`fine-tune-jobs`, `files`, `batches`, or one of its own):

- before the work that takes a slot, a handler asks `must_wait(flow, state, quota)`: a run not already admitted
  for that quota queues behind anyone waiting (first come, first served), without calling Bailian;
- when that work meets a full quota anyway (`QuotaExceededError`), or must wait, it calls `wait(...)`: the run's
  next entry is the fact stage `waiting` (which quota, how full, since when, what to redo) and a marker
  `waiting/<quota>/<since ms>-<run_id>` puts it in line (the key orders the line; listing it is the queue);
- the timer counts what is free from the lists it makes anyway and calls `admit(flow, quota, free)`: the oldest
  waiting runs are re-announced as the stage that redoes the work (`requested`, `file-ready`, ...), so the
  usual function acts, and their markers are removed.

A run's place in line is computed when asked (`place_in_line`), never written per run per tick. A crash between
the `waiting` entry and its marker is repaired by the timer (`ensure_in_line`), and a marker whose run is no
longer waiting (cancelled, admitted) is dropped by `admit`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bailian_flow.pipeline.protocol.kinds import spec_of
from bailian_flow.pipeline.protocol.layout import WAITING_PREFIX
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z, parse_iso_z
from bailian_flow.pipeline.protocol.state import RunState, Stage, Waiting
from bailian_flow.pipeline.protocol.transitions import Current, commit, load

if TYPE_CHECKING:
    from bailian_flow.client.errors import QuotaExceededError

log = logging.getLogger("bailian_flow.pipeline")

FINE_TUNE_JOBS = "fine-tune-jobs"
FILES = "files"
BATCHES = "batches"
# One training at a time: the client's `QuotaExceededError.quota` for "Too many fine-tune job in running"
# (service-contract.md#C8), counted by the timer like any other quota.
TRAINING_SLOT = "training-slot"


def queue_prefix(quota: str) -> str:
    return f"{WAITING_PREFIX}{quota}/"


def marker_key(quota: str, waiting: Waiting, run_id: str) -> str:
    millis = int(parse_iso_z(waiting.since).timestamp() * 1000)
    return f"{queue_prefix(quota)}{millis:013d}-{run_id}"


def run_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].partition("-")[2]


def limit_of(flow: Flow, quota: str) -> int | None:
    """The configured limit of a known quota (settings `BAILIAN_FLOW_QUOTA_*`)."""
    limits = {
        FINE_TUNE_JOBS: flow.settings.quota_fine_tune_jobs,
        FILES: flow.settings.quota_files,
        BATCHES: flow.settings.quota_batches,
        TRAINING_SLOT: flow.settings.quota_training_slots,
    }
    return limits.get(quota)


# Quotas the timer counts for every kind (`timer/quotas.COUNTERS`); a kind adds its own (`KindSpec.quotas`).
PROTOCOL_QUOTAS = frozenset({FINE_TUNE_JOBS, FILES, TRAINING_SLOT})


def known_quotas(state: RunState) -> frozenset[str]:
    """The quotas a line exists for, for this run's kind: one the timer admits from."""
    return PROTOCOL_QUOTAS | frozenset(spec_of(state.kind).quotas)


class Taking(Protocol):
    """What the timer knows of a run (its `Brief`) that tells whether it is about to take a quota's slot."""

    stage: str
    admitted_for: str | None
    redo: str | None


def about_to_take(briefs: Sequence[Taking], quota: str, intent: str) -> list[Any]:
    """Runs that passed the line for `quota` (or are at its `intent`) and have not made their resource yet: a
    counter adds them to what Bailian lists, or they would be let through twice."""
    return [
        brief
        for brief in briefs
        if brief.stage == intent or (brief.admitted_for == quota and brief.stage == brief.redo)
    ]


def admitted_for(state: RunState, quota: str) -> bool:
    return state.waiting is not None and state.waiting.quota == quota and state.waiting.admitted_at is not None


async def must_wait(flow: Flow, state: RunState, quota: str) -> bool:
    """Whether the run must queue before taking a slot of `quota`: others wait already and it was not admitted."""
    if admitted_for(state, quota):
        return False
    async for _ in flow.store.list(queue_prefix(quota)):
        return True
    return False


async def wait(
    flow: Flow,
    current: Current,
    quota: str,
    redo: Stage,
    *,
    used: int | None = None,
    limit: int | None = None,
    needs_bytes: int | None = None,
    needs_requests: dict[str, int] | None = None,
    why: str = "",
) -> RunState | None:
    """Commit `waiting` and join the line; a run that waited for this quota before keeps its place."""
    previous = current.state.waiting
    limit = limit if limit is not None else limit_of(flow, quota)
    since = previous.since if previous is not None and previous.quota == quota else iso_z(timespec="milliseconds")
    waiting = Waiting(
        quota=quota,
        used=used,
        limit=limit,
        since=since,
        redo=redo,
        needs_bytes=needs_bytes,
        needs_requests=needs_requests,
    )
    fullness = f" ({used}/{limit})" if used is not None and limit is not None else ""
    changed = f"waiting for the {quota} quota{fullness}" + (f": {why}" if why else "")
    state = await commit(flow, current, "waiting", changed, waiting=waiting)
    if state is not None:
        await ensure_in_line(flow, state)
    return state


async def wait_for_quota(
    flow: Flow, current: Current, exc: QuotaExceededError, quota: str, redo: Stage, needs_bytes: int | None = None
) -> None:
    """A create that met a full quota: wait for it (the service said it is full), quoting the service's words.

    The line is the quota the service named when some counter admits it (`known`), else the caller's: a line no
    counter reads would hold the run for ever (service-contract.md#C8)."""
    if exc.quota and exc.quota in known_quotas(current.state):
        quota = exc.quota
    limit = limit_of(flow, quota)
    await wait(flow, current, quota, redo, used=limit, limit=limit, needs_bytes=needs_bytes, why=exc.message)


async def ensure_in_line(flow: Flow, state: RunState) -> None:
    """Write the run's marker in its quota's line (create-only, so repeating it is harmless)."""
    waiting = state.waiting
    if state.stage != "waiting" or waiting is None:
        return
    body = json.dumps({"run_id": state.run_id, "quota": waiting.quota, "since": waiting.since}).encode()
    key = marker_key(waiting.quota, waiting, state.run_id)
    await flow.store.put(key, body, forbid_overwrite=True, content_type="application/json")


async def line(flow: Flow, quota: str) -> list[str]:
    """The marker keys of a quota's line, first come first."""
    return [info.key async for info in flow.store.list(queue_prefix(quota))]


async def places_in_line(flow: Flow, states: Sequence[RunState]) -> dict[str, int]:
    """Each waiting run's place (1 = admitted next), from one listing per quota; computed when asked."""
    places: dict[str, int] = {}
    lines: dict[str, dict[str, int]] = {}
    for state in states:
        waiting = state.waiting
        if state.stage != "waiting" or waiting is None:
            continue
        if waiting.quota not in lines:
            lines[waiting.quota] = {key: index + 1 for index, key in enumerate(await line(flow, waiting.quota))}
        place = lines[waiting.quota].get(marker_key(waiting.quota, waiting, state.run_id))
        if place is not None:
            places[state.run_id] = place
    return places


@dataclass
class Room:
    """What a quota has free now, as the timer counted it."""

    used: int
    limit: int
    bytes_used: int | None = None
    bytes_limit: int | None = None

    @property
    def free(self) -> int:
        return max(self.limit - self.used, 0)

    def fits(self, needs_bytes: int | None) -> bool:
        if self.used >= self.limit:
            return False
        if needs_bytes is None or self.bytes_used is None or self.bytes_limit is None:
            return True
        return self.bytes_used + needs_bytes <= self.bytes_limit

    def take(self, needs_bytes: int | None) -> None:
        self.used += 1
        if needs_bytes is not None and self.bytes_used is not None:
            self.bytes_used += needs_bytes


async def admit(flow: Flow, quota: str, room: Room, *, reads_left: int | None = None) -> list[RunState]:
    """Re-announce the oldest runs waiting for `quota` while it has room; their markers go.

    Strictly first come, first served: the line stops at the first run that does not fit (a large dataset is
    not overtaken by small ones). At most `reads_left` runs are loaded (each is one OSS read).
    """
    admitted: list[RunState] = []
    memo: dict[str, Any] = {}  # what a kind's `requests_fit` read once for the whole pass
    for key in await line(flow, quota):
        if not room.fits(None) or (reads_left is not None and reads_left <= 0):
            break
        run_id = run_of(key)
        current = await load(flow, run_id)
        if reads_left is not None:
            reads_left -= 1
        waiting = None if current is None else current.state.waiting
        if current is None or current.state.stage != "waiting" or waiting is None or waiting.quota != quota:
            await flow.store.delete(key)  # the run left the line some other way (cancelled, already admitted)
            continue
        if key != marker_key(quota, waiting, run_id):
            await flow.store.delete(key)
            continue
        if not room.fits(waiting.needs_bytes):
            break
        if waiting.needs_requests:
            # Held back by other runs' pending requests rather than a slot: its kind tells whether they fit now.
            fits = spec_of(current.state.kind).hook("requests_fit")
            if fits is not None and not await fits(flow, waiting.needs_requests, memo):
                continue  # the runs behind it may go
        changed = f"admitted: the {quota} quota has room ({room.used}/{room.limit}); redoing {waiting.redo}"
        updated = waiting.model_copy(update={"admitted_at": iso_z(timespec="milliseconds")})
        state = await commit(flow, current, waiting.redo, changed, waiting=updated)
        if state is not None:
            admitted.append(state)
            room.take(waiting.needs_bytes)
        await flow.store.delete(key)
    if admitted:
        log.info("admitted %d run(s) for the %s quota", len(admitted), quota)
    return admitted
