"""OSS triggers, locally: long-poll the emulator's object events and route each to the matching functions.

The emulator records every OSS write as an FC OSS event record (`GET /_emulator/oss/events?after=SEQ&wait=S`).
A record goes to every OSS trigger whose bucket, event list and key prefix/suffix match, exactly as FC would
filter it, and is delivered as `{"events": [record]}` through the async dispatcher.

The deliveries of one poll's events are handed over together with the cursor they advance to (`start_after` is
where a restarted stack's journal says the last run stopped): with a journaled dispatcher an event is routed at
least once however the stack dies, never skipped.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp

from bailian_flow.fc import decode_object_key
from bailian_flow.local.runner import Dispatcher
from bailian_flow.local.spec import OssTrigger

log = logging.getLogger("bailian_flow.local")

EVENTS_PATH = "/_emulator/oss/events"


def trigger_matches(trigger: OssTrigger, record: dict[str, Any]) -> bool:
    """Does FC's filter for this trigger let the record through? (Config names carry `oss:`, payloads not.)"""
    try:
        bucket = record["oss"]["bucket"]["name"]
        key = record["oss"]["object"]["key"]
        event_name = record["eventName"]
    except (KeyError, TypeError):
        return False
    if bucket != trigger.bucket:
        return False
    if not any(fnmatch.fnmatchcase(f"oss:{event_name}", pattern) for pattern in trigger.events):
        return False
    # Keys may arrive URL-encoded; the filter applies to the real key, decoded as the handler decodes it.
    return any(k.startswith(trigger.prefix) and k.endswith(trigger.suffix) for k in {key, decode_object_key(key)})


class OssEventPoller:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        emulator_url: str,
        routes: Sequence[tuple[str, OssTrigger]],
        dispatcher: Dispatcher,
        *,
        wait: float = 5.0,
        start_after: int = 0,
    ) -> None:
        self._session = session
        self._url = emulator_url + EVENTS_PATH
        self._routes = routes
        self._dispatcher = dispatcher
        self._wait = wait
        self.cursor = start_after

    async def _fetch(self, wait: float) -> tuple[list[dict[str, Any]], int]:
        params = {"after": str(self.cursor), "wait": str(wait)}
        timeout = aiohttp.ClientTimeout(total=wait + 30)
        async with self._session.get(self._url, params=params, timeout=timeout) as response:
            response.raise_for_status()
            body = await response.json()
        return list(body.get("events") or []), int(body.get("last_seq", 0))

    def _route(self, events: list[dict[str, Any]], last_seq: int) -> None:
        if last_seq < self.cursor:
            # A restarted emulator numbers from 0 again and answers with its whole buffer.
            log.info("emulator event sequence restarted; following from 0")
            self.cursor = 0
        deliveries: list[tuple[str, bytes, str]] = []
        reached = self.cursor
        for item in events:
            seq, record = int(item["seq"]), item["record"]
            if seq <= reached:
                continue
            for function, trigger in self._routes:
                if trigger_matches(trigger, record):
                    key = record["oss"]["object"]["key"]
                    source = f"oss:{record['eventName']} {record['oss']['bucket']['name']}/{key}"
                    deliveries.append((function, json.dumps({"events": [record]}).encode("utf-8"), source))
            reached = seq
        if reached != self.cursor:
            self._dispatcher.submit_many(deliveries, oss_seq=reached)
            self.cursor = reached

    async def run(self) -> None:
        while True:
            try:
                events, last_seq = await self._fetch(self._wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("polling OSS events failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            self._route(events, last_seq)

    async def caught_up(self) -> bool:
        """True when every event the emulator has recorded so far has been routed."""
        events, last_seq = await self._fetch(0)
        if last_seq < self.cursor:
            return False
        return not any(int(item["seq"]) > self.cursor for item in events)
