"""The run log: an append-only, create-only sequence of whole-state entries per run, on an ObjectStore.

Layout (prefixes are configuration):

    runs/<run_id>/00000000.json                 entry 0: the commit point for sequence number 0
    runs/<run_id>/00000001.json                 entry 1 ...
    runs/<run_id>/00000001-file-ready.json      stage marker: a copy of entry 1, named after its stage
    active/<run_id>                             the run is not finished (the timer's work list)

Why two objects per transition. The sequence number must have exactly one winner, but OSS create-only
(`x-oss-forbid-overwrite`) arbitrates per *key*: if the stage were part of the only key, two deliveries
writing `00000003-training.json` and `00000003-failed.json` would both succeed. So the commit key carries
the sequence number alone (`00000003.json`): whichever create lands first wins and every other writer
gets 409, whatever stage it meant to write. Only the winner then writes the stage-named marker, a copy of
its entry, which exists so that OSS trigger suffix filters (`-file-ready.json`, `-job-succeeded.json`)
can chain the next function on a stage. Readers never look at markers: a marker cannot contradict the log.

A crash between commit and marker loses that event (the entry is committed, the trigger never fires). The
stage marker is written create-only by `publish`, which anyone may repeat for the latest entry: the timer
re-drives a run whose marker is missing. This is the same "record, then re-drive what was lost" reasoning
as for Bailian side effects, and needs no lease or lock object.

An ambiguous create: the SDK retries a PUT whose response was lost, and the retry meets our own object
(409). Each entry carries a random `nonce`; on 409 `append` reads the committed entry back and counts it as
won when the nonce is ours. Without that a delivery could win the sequence number and believe it lost.

Newest entry: list `runs/<run_id>/` and take the last commit key (zero-padded numbers sort lexically). A
`RunLog` remembers the newest entry it has seen per run and lists only after it (`start_after`), so a warm
instance does not reread long histories.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bailian_flow.store import ObjectStore, StoreError, bare_etag

logger = logging.getLogger("bailian_flow.runlog")

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_STAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ENTRY_NAME = re.compile(r"(\d{8})\.json")
_READ_CONCURRENCY = 8
# Creation times are stored as (horizon - epoch ms): far enough ahead (year 2286) to stay 13 digits.
_INDEX_HORIZON_MS = 10**13


class RunLogError(Exception):
    """An object under the run prefix is not a readable entry (corrupt or foreign)."""


class RunEntry(BaseModel):
    """One committed state of a run: the whole state, not a delta, so the newest entry alone is the state."""

    model_config = ConfigDict(extra="allow", frozen=True)

    run_id: str
    seq: int = Field(ge=0)
    stage: str
    state: dict[str, Any]
    changed: str = ""
    at: str
    writer: str = ""
    # Random per write: tells our own committed entry from a rival's when a retried create answers 409.
    nonce: str = ""


def _utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_run_id(value: str) -> bool:
    """Whether `value` can name a run (an object-key segment of the run log)."""
    return _RUN_ID.fullmatch(value) is not None


def _check_run_id(run_id: str) -> None:
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run_id must match {_RUN_ID.pattern}: {run_id!r}")


class RunLog:
    def __init__(
        self,
        store: ObjectStore,
        prefix: str = "runs/",
        active_prefix: str = "active/",
        index_prefix: str = "index/",
    ) -> None:
        if not all(p.endswith("/") for p in (prefix, active_prefix, index_prefix)):
            raise ValueError("prefixes must end with '/'")
        self.store = store
        self.prefix = prefix
        self.active_prefix = active_prefix
        self.index_prefix = index_prefix
        self._newest: dict[str, RunEntry] = {}

    def __repr__(self) -> str:
        return f"RunLog(store={self.store!r}, prefix={self.prefix!r})"

    # -- keys -------------------------------------------------------------------------------------------

    def run_prefix(self, run_id: str) -> str:
        _check_run_id(run_id)
        return f"{self.prefix}{run_id}/"

    def entry_key(self, run_id: str, seq: int) -> str:
        return f"{self.run_prefix(run_id)}{seq:08d}.json"

    def stage_key(self, run_id: str, seq: int, stage: str) -> str:
        return f"{self.run_prefix(run_id)}{seq:08d}-{stage}.json"

    def active_key(self, run_id: str) -> str:
        _check_run_id(run_id)
        return f"{self.active_prefix}{run_id}"

    # -- reading ----------------------------------------------------------------------------------------

    async def latest(self, run_id: str) -> RunEntry | None:
        """The newest committed entry, or None for a run that has none."""
        known = self._newest.get(run_id)
        start_after = self.entry_key(run_id, known.seq) if known else None
        newest_key: str | None = None
        async for info in self.store.list(self.run_prefix(run_id), start_after=start_after):
            if _ENTRY_NAME.fullmatch(info.key.rsplit("/", 1)[-1]):
                newest_key = info.key
        if newest_key is None:
            return known
        entry = await self._read(newest_key)
        if entry is None:  # deleted between list and get: only a whole-run cleanup does that
            return known
        self._remember(entry)
        return entry

    async def history(self, run_id: str) -> list[RunEntry]:
        """Every committed entry, oldest first."""
        keys = [
            info.key
            async for info in self.store.list(self.run_prefix(run_id))
            if _ENTRY_NAME.fullmatch(info.key.rsplit("/", 1)[-1])
        ]
        limit = asyncio.Semaphore(_READ_CONCURRENCY)

        async def read(key: str) -> RunEntry | None:
            async with limit:
                return await self._read(key)

        entries = [entry for entry in await asyncio.gather(*(read(key) for key in keys)) if entry is not None]
        entries.sort(key=lambda entry: entry.seq)
        if entries:
            self._remember(entries[-1])
        return entries

    async def _read(self, key: str) -> RunEntry | None:
        data = await self.store.get(key)
        if data is None:
            return None
        try:
            return RunEntry.model_validate_json(data)
        except ValidationError as exc:
            raise RunLogError(f"{key} is not a run entry: {exc.error_count()} problem(s)") from None

    def _remember(self, entry: RunEntry) -> None:
        known = self._newest.get(entry.run_id)
        if known is None or entry.seq > known.seq:
            self._newest[entry.run_id] = entry

    # -- writing ----------------------------------------------------------------------------------------

    async def append(
        self,
        run_id: str,
        seq: int,
        stage: str,
        state: dict[str, Any],
        changed: str = "",
        writer: str = "",
        *,
        publish: bool = True,
    ) -> bool:
        """Commit entry `seq` create-only. False: another delivery committed this sequence number first
        (whatever its stage): re-read `latest` and decide again. `publish=False` writes no stage marker: an entry
        that only notes something in the history (a compensation) must not chain a function again."""
        if not _STAGE.fullmatch(stage):
            raise ValueError(f"stage must match {_STAGE.pattern}: {stage!r}")
        if seq < 0:
            raise ValueError("seq must be >= 0")
        entry = RunEntry(
            run_id=run_id,
            seq=seq,
            stage=stage,
            state=state,
            changed=changed,
            at=_utcnow(),
            writer=writer,
            nonce=uuid.uuid4().hex,
        )
        key = self.entry_key(run_id, seq)
        data = entry.model_dump_json().encode()
        if not await self.store.put(key, data, forbid_overwrite=True, content_type="application/json"):
            committed = await self._read(key)
            if committed is None or committed.nonce != entry.nonce:
                if committed is not None:
                    self._remember(committed)
                return False
            # Our own write, met again by a retried PUT whose first response was lost.
        self._remember(entry)
        if not publish:
            return True
        try:
            await self.publish(entry)
        except StoreError as exc:
            # The commit stands; the missing marker is re-driven by `publish` from the timer.
            logger.warning("run %s seq %d committed, stage marker not written: %s", run_id, seq, exc)
        return True

    async def publish(self, entry: RunEntry) -> bool:
        """Write the entry's stage marker (idempotent). True when this call wrote it."""
        key = self.stage_key(entry.run_id, entry.seq, entry.stage)
        data = entry.model_dump_json().encode()
        return await self.store.put(key, data, forbid_overwrite=True, content_type="application/json")

    async def is_published(self, entry: RunEntry) -> bool:
        return await self.store.head(self.stage_key(entry.run_id, entry.seq, entry.stage)) is not None

    # -- the index of unfinished runs -------------------------------------------------------------------

    async def mark_active(self, run_id: str) -> None:
        # Create-only: the marker keeps its first timestamp, which orders the timer's scan oldest first.
        body = json.dumps({"run_id": run_id, "since": _utcnow()}).encode()
        await self.store.put(self.active_key(run_id), body, forbid_overwrite=True, content_type="application/json")

    async def clear_active(self, run_id: str) -> None:
        await self.store.delete(self.active_key(run_id))

    async def list_active(self) -> list[str]:
        """Run ids with an active marker, oldest marker first."""
        found = [
            (info.last_modified, info.key[len(self.active_prefix) :])
            async for info in self.store.list(self.active_prefix)
        ]
        found.sort()
        return [run_id for _, run_id in found if _RUN_ID.fullmatch(run_id)]

    # -- the newest-first index ---------------------------------------------------------------------------

    def index_key(self, run_id: str, created: dt.datetime) -> str:
        """`index/<inverted ms>-<run_id>`: listing the prefix in key order yields the newest runs first."""
        _check_run_id(run_id)
        inverted = _INDEX_HORIZON_MS - int(created.timestamp() * 1000)
        return f"{self.index_prefix}{inverted:013d}-{run_id}"

    async def add_to_index(self, run_id: str, created: dt.datetime) -> None:
        await self.store.put(self.index_key(run_id, created), b"", forbid_overwrite=True)

    async def recent(self, limit: int = 50, after: str | None = None) -> tuple[list[str], str | None]:
        """Run ids, newest first, and the cursor to pass as `after` for the next page (None at the end)."""
        runs: list[str] = []
        cursor = f"{self.index_prefix}{after}" if after else None
        async for info in self.store.list(self.index_prefix, start_after=cursor):
            name = info.key[len(self.index_prefix) :]
            _, dash, run_id = name.partition("-")
            if not dash or not _RUN_ID.fullmatch(run_id) or run_id in runs:
                continue
            runs.append(run_id)
            if len(runs) == limit:
                return runs, name
        return runs, None

    async def list_runs(self, limit: int = 100, start_after: str | None = None) -> list[str]:
        """Run ids in lexicographic order (run ids are hashes: not time order), at most `limit`.

        The store lists keys, not "directories": after the first key of a run, listing restarts past all of
        that run's keys (`<run_id>0` sorts after every `<run_id>/...`), one request per run.
        """
        runs: list[str] = []
        cursor = f"{self.prefix}{start_after}0" if start_after else None
        while len(runs) < limit:
            next_run: str | None = None
            async for info in self.store.list(self.prefix, start_after=cursor):
                run_id, slash, _ = info.key[len(self.prefix) :].partition("/")
                if slash and _RUN_ID.fullmatch(run_id):
                    next_run = run_id
                    break
                cursor = info.key  # a stray object directly under the prefix
            if next_run is None:
                break
            runs.append(next_run)
            cursor = f"{self.prefix}{next_run}0"
        return runs


def run_id_for(bucket: str, key: str, etag: str) -> str:
    """The run for one version of one object: the same upload delivered twice maps to the same run.

    The ETag is compared bare and upper-cased: OSS events carry it unquoted, HEAD and listings quoted. The
    result (`r` + 15 hex digits) is safe as an object-key segment and in Bailian names.
    """
    material = "\0".join((bucket, key, bare_etag(etag).upper()))
    return "r" + hashlib.sha256(material.encode()).hexdigest()[:15]
