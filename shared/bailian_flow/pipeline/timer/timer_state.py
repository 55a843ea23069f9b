"""What the timer remembers between ticks, and what a tick costs in object-store reads.

`runs/_timer-state.json` holds, per active run, what the last tick knew (stage, sequence number, when, the
Bailian resource it follows and that resource's status), the rotation cursor, and the quota use it counted. It is
a hint, never the truth: a run whose remote status did not move and whose stage is not stale costs no read at
all; any doubt (a status that moved, a stage past its lease, a run the hint does not know) loads the run's log.
Read once and written once per tick (overwritten: only the timer writes it, once a minute).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from bailian_flow.pipeline.protocol.kinds import spec_of
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.store import ObjectInfo, ObjectStore

log = logging.getLogger("bailian_flow.pipeline")

TIMER_STATE_NAME = "_timer-state.json"


class Brief(BaseModel):
    """One run as the last tick saw it."""

    stage: str
    seq: int
    at: str
    attempt: int = 1
    job_id: str | None = None
    job_status: str | None = None
    import_job_id: str | None = None
    deployed_model: str | None = None
    deployment_status: str | None = None
    # What a polled stage follows: "family:id" (as in `flow.seen`) -> the status the run recorded (None: any status
    # but PENDING/RUNNING has moved). A batch run follows each of its shards in flight.
    follows: dict[str, str | None] = {}
    # For quota counting: the quota the run was admitted for and the stage that redoes its work, its dataset's size.
    admitted_for: str | None = None
    redo: str | None = None
    size: int | None = None

    @classmethod
    def of(cls, state: RunState, at: datetime) -> Brief:
        waiting = state.waiting
        return cls(
            admitted_for=waiting.quota if waiting is not None and waiting.admitted_at else None,
            redo=waiting.redo if waiting is not None else None,
            size=state.source.size,
            stage=state.stage,
            seq=state.seq,
            at=at.isoformat(),
            attempt=state.attempt,
            job_id=state.job_id,
            job_status=state.job_status,
            import_job_id=state.import_job_id,
            deployed_model=state.deployed_model,
            deployment_status=state.deployment_status,
            follows=_follows(state),
        )


def _follows(state: RunState) -> dict[str, str | None]:
    follows: dict[str, str | None] = {}
    spec = spec_of(state.kind)
    if state.stage in spec.follows:
        family, id_field, status_field = spec.follows[state.stage]
        resource_id = getattr(state, id_field, None)
        if resource_id:
            follows[f"{family}:{resource_id}"] = getattr(state, status_field, None) if status_field else None
    elif state.stage in spec.polled:
        follows.update(state.followed())
    return follows


class QuotaUse(BaseModel):
    used: int
    limit: int
    waiting: int = 0


class TimerState(BaseModel):
    runs: dict[str, Brief] = {}
    # The run the next tick starts its visits with: every run gets its turn however short the ticks.
    cursor: str | None = None
    quotas: dict[str, QuotaUse] = {}
    at: str | None = None


def timer_state_key(runs_prefix: str) -> str:
    return f"{runs_prefix}{TIMER_STATE_NAME}"


async def read_timer_state(store: ObjectStore, runs_prefix: str) -> TimerState:
    raw = await store.get(timer_state_key(runs_prefix))
    if raw is None:
        return TimerState()
    try:
        return TimerState.model_validate_json(raw)
    except ValidationError:
        # Only a hint: a damaged one costs one tick of reads, never a wrong decision.
        log.warning("ignoring an unreadable %s", TIMER_STATE_NAME)
        return TimerState()


async def write_timer_state(store: ObjectStore, runs_prefix: str, state: TimerState) -> None:
    state.at = datetime.now(timezone.utc).isoformat()
    data = state.model_dump_json(exclude_defaults=True).encode()
    await store.put(timer_state_key(runs_prefix), data, content_type="application/json")


class CountingStore:
    """An ObjectStore that counts the reads (GET, HEAD, LIST pages) and writes made through it.

    Options it does not know pass through untouched (`**options`), so it wraps any backend.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.reads = 0
        self.writes = 0

    async def put(self, key: str, data: bytes, **options: Any) -> bool:
        self.writes += 1
        return await self.inner.put(key, data, **options)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], **options: Any) -> None:
        self.writes += 1
        await self.inner.put_stream(key, chunks, **options)

    async def get(self, key: str, **options: Any) -> bytes | None:
        self.reads += 1
        return await self.inner.get(key, **options)

    async def head(self, key: str, **options: Any) -> ObjectInfo | None:
        self.reads += 1
        return await self.inner.head(key, **options)

    def stream(self, key: str, **options: Any) -> AsyncIterator[bytes]:
        self.reads += 1
        return self.inner.stream(key, **options)

    async def read_range(self, key: str, offset: int, length: int, **options: Any) -> bytes:
        self.reads += 1
        return await self.inner.read_range(key, offset, length, **options)

    async def list(self, prefix: str, **options: Any) -> AsyncIterator[ObjectInfo]:
        # One read per page of up to 1,000 keys, as OSS answers (and bills) them.
        self.reads += 1
        seen = 0
        async for info in self.inner.list(prefix, **options):
            seen += 1
            if seen % 1000 == 0:
                self.reads += 1
            yield info

    async def delete(self, key: str, **options: Any) -> None:
        self.writes += 1
        await self.inner.delete(key, **options)

    async def close(self) -> None:
        await self.inner.close()
