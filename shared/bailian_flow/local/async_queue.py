"""FC's async queue, kept on disk: an accepted async delivery is delivered, even if the stack is killed meanwhile.

On FC an accepted async invocation (an OSS trigger's event, `x-fc-invocation-type: Async`) is persisted in an
internal queue before FC answers, executed at least once, and retried up to `maxAsyncRetryAttempts` (3 by default)
when the handler fails ("Asynchronous invocation", https://help.aliyun.com/en/functioncompute/fc-asynchronous-invocation,
and "Overview", https://www.alibabacloud.com/help/en/fc/overview-34, section "Background"; "Configure a retry
mechanism", https://help.aliyun.com/en/functioncompute/fc/user-guide/error-handling-1-2, "Asynchronous
invocations"). Locally the queue lives in the stack's process, so it is journaled to
`<data-dir>/fc-async-queue.jsonl`, one JSON object a line:

    {"op": "accept", "deliveries": [{"id", "function", "source", "payload" (base64), "at" (epoch)}], "oss_seq": N}
    {"op": "failed", "id": ..., "attempt": n}     an attempt failed and a retry is due (the count survives)
    {"op": "end", "id": ...}                      the handler returned, or the delivery was dropped as FC drops it

A delivery is acknowledged ("end") only after its invocation finished; one accepted and not ended when the process
died is delivered again by the restarted stack: at least once, as FC, so a handler may see an event twice (ours
are idempotent). The OSS trigger's cursor (the emulator's event sequence number) is written on the same line as
the deliveries its events made: an event is either routed and journaled, or fetched again after a restart.

Timer deliveries are not journaled: a tick missed while the stack was dead is simply the next tick.

The journal is rewritten (accepted, not ended, plus the cursor) when opened and every COMPACT_AFTER lines, so it
stays as small as the queue. A line cut short by a SIGKILL is skipped when read, and gone after the rewrite.
Writes are flushed, not fsynced: a killed process loses nothing the kernel has; only a power cut could.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("bailian_flow.local")

JOURNAL_NAME = "fc-async-queue.jsonl"
COMPACT_AFTER = 2000


class QueueBusy(OSError):
    """Another stack is running on this data directory."""


@dataclass
class Accepted:
    """One async delivery accepted and not yet ended."""

    request_id: str
    function: str
    source: str
    payload: bytes
    accepted_at: float  # epoch seconds: the event's age survives a restart
    failed_attempts: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "function": self.function,
            "source": self.source,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "at": self.accepted_at,
            "failed": self.failed_attempts,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Accepted:
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        return cls(
            request_id=str(raw["id"]),
            function=str(raw["function"]),
            source=str(raw["source"]),
            payload=base64.b64decode(str(raw["payload"]), validate=True),
            accepted_at=float(raw["at"]),
            failed_attempts=int(raw.get("failed", 0)),
        )


class AsyncJournal:
    """The journal of one data directory; only one stack may hold it (an advisory lock, freed however we die)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: dict[str, Accepted] = {}
        self.oss_seq = 0
        self._handle: IO[str] | None = None
        self._lock: IO[bytes] | None = None
        self._lines = 0

    @classmethod
    def open(cls, data_dir: Path) -> AsyncJournal:
        journal = cls(data_dir / JOURNAL_NAME)
        journal._take_lock()
        try:
            journal._read()
            journal._rewrite()
        except BaseException:
            journal.close()
            raise
        if journal.pending:
            log.info("%d async deliveries not finished before the last stop: delivering again", len(journal.pending))
        return journal

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: one stack per data directory is the user's care
            return
        lock = self.path.with_name(f".{self.path.name}.lock").open("a+b")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise QueueBusy(f"another bailian-flow dev is running on {self.path.parent}") from None
        self._lock = lock

    def _read(self) -> None:
        with contextlib.suppress(FileNotFoundError), self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    self._apply(json.loads(line))
                except (ValueError, KeyError, TypeError, binascii.Error):
                    log.warning("%s line %d unreadable (cut short by a kill?): skipped", self.path.name, number)

    def _apply(self, entry: Any) -> None:
        if not isinstance(entry, dict):
            raise ValueError("not an object")
        op = entry.get("op")
        if op == "accept":
            for raw in entry.get("deliveries") or []:
                accepted = Accepted.from_json(raw)
                self.pending[accepted.request_id] = accepted
            if entry.get("oss_seq") is not None:
                self.oss_seq = int(entry["oss_seq"])
        elif op == "failed":
            found = self.pending.get(str(entry["id"]))
            if found is not None:
                found.failed_attempts = max(found.failed_attempts, int(entry["attempt"]))
        elif op == "end":
            self.pending.pop(str(entry["id"]), None)
        else:
            raise ValueError(f"unknown op {op!r}")

    def _rewrite(self) -> None:
        if self._handle is not None:
            self._handle.close()
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            deliveries = [accepted.as_json() for accepted in self.pending.values()]
            handle.write(json.dumps({"op": "accept", "deliveries": deliveries, "oss_seq": self.oss_seq}) + "\n")
        os.replace(temporary, self.path)
        self._handle = self.path.open("a", encoding="utf-8")
        self._lines = 1

    def _write(self, entry: dict[str, Any]) -> None:
        if self._handle is None:
            raise RuntimeError("the async journal is closed")
        if self._lines >= COMPACT_AFTER:
            self._rewrite()
        # One write call per line, flushed at once: the kernel has it before the caller goes on.
        self._handle.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._handle.flush()
        self._lines += 1

    # -- what the dispatcher and the OSS trigger record ------------------------------------------------------
    def accept(self, deliveries: list[Accepted], *, oss_seq: int | None = None) -> None:
        entry: dict[str, Any] = {"op": "accept", "deliveries": [accepted.as_json() for accepted in deliveries]}
        if oss_seq is not None:
            entry["oss_seq"] = oss_seq
        self._write(entry)
        for accepted in deliveries:
            self.pending[accepted.request_id] = accepted
        if oss_seq is not None:
            self.oss_seq = oss_seq

    def attempt_failed(self, request_id: str, attempt: int) -> None:
        self._write({"op": "failed", "id": request_id, "attempt": attempt})
        found = self.pending.get(request_id)
        if found is not None:
            found.failed_attempts = attempt

    def end(self, request_id: str) -> None:
        if self.pending.pop(request_id, None) is not None:
            self._write({"op": "end", "id": request_id})

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
