"""OSS event notifications, delivered by long-poll: ``GET /_emulator/oss/events?after=SEQ&wait=SECONDS``.

Each successful create (PutObject, PostObject) and each DeleteObject of an existing key appends one record
shaped exactly like an element of ``events`` in an FC OSS trigger payload (fc-runtime.md). The local runtime
polls this and turns records into trigger deliveries.

Keys: real OSS notifications are ambiguous about URL-encoding, so records keep the plain UTF-8 key by default
(what OSS sends most often) and URL-encode it (``urllib.parse.quote``, ``/`` kept) when ``POST
/_emulator/oss/config {"encode_event_keys": true}`` is set, or per poll with ``encode_keys=true|false``.
Decoders written for either ``unquote`` or ``unquote_plus`` read the encoded form correctly.

Sequence numbers only grow, even across ``/_emulator/reset`` (which empties the buffer), so a poller never
misses events after a reset; a poller whose ``after`` is ahead of ``last_seq`` (an emulator restarted without its
data directory) gets the whole buffer back.

With a data directory (persist.py) the records are also appended to ``oss-events.jsonl`` as they happen and read
back at start: like OSS's own notifications, an event outlives the process that will deliver it, and a restarted
emulator numbers on from where it stopped, so the local runtime's saved cursor still means the same event.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from aiohttp import web

from .clock import Clock
from .errors import native_error
from .state import STATE_KEY

ACCOUNT_ID = "1234567890"
REGION = "cn-hangzhou"
BUFFER_SIZE = 10_000
MAX_WAIT_SECONDS = 60.0
LOG_FILE_NAME = "oss-events.jsonl"

log = logging.getLogger(__name__)


def iso_time(epoch: float) -> str:
    """``2022-08-13T06:45:43.000Z``."""
    millis = round((epoch - int(epoch)) * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch))) + f".{millis:03d}Z"


class OssEvents:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.encode_keys = False
        self.last_seq = 0
        self._buffer: deque[tuple[int, dict[str, Any]]] = deque(maxlen=BUFFER_SIZE)
        self._changed = asyncio.Event()
        self._closing = False
        self._log_path: Path | None = None
        self._log: IO[str] | None = None
        self._logged_lines = 0

    # -- the log in the data directory ----------------------------------------------------------------------
    def keep_in(self, path: Path) -> int:
        """Restore the records logged at `path`, then log every new one there; returns how many were restored.

        A line cut short by a killed process, or one that does not parse, is skipped: the rest still counts.
        """
        restored = 0
        with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    item = json.loads(line)
                    seq = int(item["seq"])
                except (ValueError, KeyError, TypeError):
                    continue
                self.last_seq = max(self.last_seq, seq)
                if isinstance(item.get("record"), dict):
                    self._buffer.append((seq, item["record"]))
                    restored += 1
        self._log_path = path
        self._rewrite()  # drops a torn last line, and what the buffer no longer holds
        return restored

    def _rewrite(self) -> None:
        """The log, rewritten as exactly the buffer (and the last sequence number, which must survive a reset)."""
        assert self._log_path is not None
        if self._log is not None:
            self._log.close()
        temporary = self._log_path.with_name(f".{self._log_path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"seq": self.last_seq}) + "\n")
            for seq, record in self._buffer:
                handle.write(json.dumps({"seq": seq, "record": record}, separators=(",", ":")) + "\n")
        os.replace(temporary, self._log_path)
        self._log = self._log_path.open("a", encoding="utf-8")
        self._logged_lines = len(self._buffer) + 1

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _append(self, seq: int, record: dict[str, Any]) -> None:
        if self._log is None:
            return
        if self._logged_lines >= 2 * BUFFER_SIZE:
            self._rewrite()  # already holds this record: the buffer has it
            return
        # One write per line, flushed: a SIGKILL loses no event the OS has been handed (fsync would only add
        # power-loss safety, at a disk flush per upload).
        self._log.write(json.dumps({"seq": seq, "record": record}, separators=(",", ":")) + "\n")
        self._log.flush()
        self._logged_lines += 1

    def emit(
        self,
        event_name: str,
        *,
        bucket: str,
        key: str,
        size: int,
        etag: str,
        delta_size: int,
        request_id: str,
        source_ip: str,
    ) -> int:
        record = {
            "eventName": event_name,
            "eventSource": "acs:oss",
            "eventTime": iso_time(time.time()),  # wall time, like the objects it reports
            "eventVersion": "1.0",
            "oss": {
                "bucket": {
                    "arn": f"acs:oss:{REGION}:{ACCOUNT_ID}:{bucket}",
                    "name": bucket,
                    "ownerIdentity": ACCOUNT_ID,
                    "virtualBucket": "",
                },
                "object": {"deltaSize": delta_size, "eTag": etag, "key": key, "size": size},
                "ossSchemaVersion": "1.0",
                "ruleId": hashlib.sha1(bucket.encode(), usedforsecurity=False).hexdigest(),
            },
            "region": REGION,
            "requestParameters": {"sourceIPAddress": source_ip},
            "responseElements": {"requestId": request_id},
            "userIdentity": {"principalId": ACCOUNT_ID},
        }
        self.last_seq += 1
        self._buffer.append((self.last_seq, record))
        self._append(self.last_seq, record)
        # Wake every waiter, then arm a fresh event for the next round.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return self.last_seq

    def since(self, after: int, encode_keys: bool) -> list[dict[str, Any]]:
        if after > self.last_seq:
            after = 0
        found = []
        for seq, record in self._buffer:
            if seq <= after:
                continue
            if encode_keys:
                record = copy.deepcopy(record)
                record["oss"]["object"]["key"] = quote(record["oss"]["object"]["key"], safe="/")
            found.append({"seq": seq, "record": record})
        return found

    async def wait(self, after: int, wait: float, encode_keys: bool) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            changed = self._changed
            found = self.since(after, encode_keys)
            remaining = deadline - loop.time()
            if found or remaining <= 0 or self._closing:
                return found
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                return self.since(after, encode_keys)

    def wake_for_shutdown(self) -> None:
        """Answer every long poll now: a stopping server waits for open requests, and a poller may be gone."""
        self._closing = True
        self._changed.set()

    def clear(self) -> None:
        self._buffer.clear()
        self.encode_keys = False
        if self._log_path is not None:
            self._rewrite()


OSS_EVENTS_KEY = web.AppKey("bailian_flow.emulator.oss_events", OssEvents)


def _flag(raw: str) -> bool | None:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    return None


async def poll_events(request: web.Request) -> web.Response:
    events = request.app[OSS_EVENTS_KEY]
    try:
        after = int(request.query.get("after", "0") or 0)
        wait = min(MAX_WAIT_SECONDS, max(0.0, float(request.query.get("wait", "0") or 0)))
    except ValueError:
        return native_error(400, "InvalidParameter", "after must be an integer and wait a number of seconds.")
    encode_keys = events.encode_keys
    if "encode_keys" in request.query:
        flag = _flag(request.query["encode_keys"])
        if flag is None:
            return native_error(400, "InvalidParameter", "encode_keys must be true or false.")
        encode_keys = flag
    found = await events.wait(after, wait, encode_keys)
    return web.json_response({"events": found, "last_seq": events.last_seq})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response({"encode_event_keys": request.app[OSS_EVENTS_KEY].encode_keys})


async def set_config(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return native_error(400, "InvalidParameter", "Body must be JSON.")
    if not isinstance(body, dict) or set(body) - {"encode_event_keys"}:
        return native_error(400, "InvalidParameter", 'Body must be {"encode_event_keys": true|false}.')
    value = body.get("encode_event_keys", False)
    if not isinstance(value, bool):
        return native_error(400, "InvalidParameter", "encode_event_keys must be a boolean.")
    events = request.app[OSS_EVENTS_KEY]
    events.encode_keys = value
    return web.json_response({"encode_event_keys": events.encode_keys})


def setup_events(app: web.Application) -> OssEvents:
    state = app[STATE_KEY]
    events = OssEvents(state.clock)
    app[OSS_EVENTS_KEY] = events
    state.add_reset_hook(events.clear)

    async def wake(app: web.Application) -> None:
        events.wake_for_shutdown()

    app.on_shutdown.append(wake)
    app.router.add_get("/_emulator/oss/events", poll_events)
    app.router.add_get("/_emulator/oss/config", get_config)
    app.router.add_post("/_emulator/oss/config", set_config)
    return events
