"""Drive the real FC functions against the emulator, the way FC would, one step at a time.

Events come from the emulator's own OSS notification log (the same records FC would deliver) and are routed to
the functions by the trigger filters of `bailian_flow.pipeline.protocol.layout`; the timer is ticked
explicitly. Tests can therefore deliver any event any number of times, concurrently, in any order.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bailian_flow.fc import make_context
from bailian_flow.pipeline.protocol.layout import OSS_TRIGGERS

ROOT = Path(__file__).resolve().parents[2]
# The emulator runs in its strict profile (tests/conftest.py): lists lag creates, names are not kept, ...
STRICT = os.environ.get("BAILIAN_FLOW_EMULATOR_PROFILE") == "strict"
# The strict profile's list lag, in emulated seconds (bailian_flow.emulator.behaviour).
STRICT_LIST_LAG = 30
FUNCTIONS = ("on_upload", "on_file_ready", "on_timer", "on_success", "webhook")
API_TOKEN = "test-api-token-4d1f"
BUCKET = "flow-test"


def load_function(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fc_{name}", ROOT / "functions" / name / "index.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def http_json(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


class Pipeline:
    def __init__(self, emulator_url: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
        self.url = emulator_url
        settings = {
            "DASHSCOPE_API_KEY": "sk-test-pipeline",
            "DASHSCOPE_BASE_URL": emulator_url,
            "BAILIAN_FLOW_BUCKET": BUCKET,
            "BAILIAN_FLOW_OSS_ENDPOINT": emulator_url,
            "BAILIAN_FLOW_API_TOKEN": API_TOKEN,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "test-ak",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-secret",
            # The emulator's list lag in real seconds (strict: 30 emulated seconds at time-scale 100), with margin:
            # no intent is re-claimed sooner (service-contract.md#C41).
            "BAILIAN_FLOW_LIST_LAG_SECONDS": "0.6" if STRICT else "0",
            **env,
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        self.monkeypatch = monkeypatch
        self.functions = {name: load_function(name) for name in FUNCTIONS}
        self.seen = 0
        self.encode_keys = False
        self.delivered: list[tuple[str, str]] = []  # (function, object key) of every OSS delivery
        self.new_records()  # start after whatever earlier tests left in the log

    # -- the bucket -------------------------------------------------------------------------------------------

    def _store_call(self, work: Callable[[Any], Any]) -> Any:
        from bailian_flow.store import open_store

        async def main() -> Any:
            store = open_store(store="oss", bucket=BUCKET, endpoint=self.url)
            try:
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(main())

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        assert self._store_call(lambda store: store.put(key, data, metadata=metadata))

    def upload(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
        """Put a dataset, deliver its event once, and return the run id it started."""
        self.put(key, data, metadata)
        for record in self.new_records():
            self.deliver(record)
        return str(self.run_for_key(key)["run_id"])

    def get(self, key: str) -> bytes | None:
        result: bytes | None = self._store_call(lambda store: store.get(key))
        return result

    def head_etag(self, key: str) -> str:
        info = self._store_call(lambda store: store.head(key))
        assert info is not None
        return str(info.etag)

    # -- events -----------------------------------------------------------------------------------------------

    def new_records(self) -> list[dict[str, Any]]:
        encode = "true" if self.encode_keys else "false"
        body = http_json(f"{self.url}/_emulator/oss/events?after={self.seen}&wait=0&encode_keys={encode}")
        self.seen = body["last_seq"]
        return [event["record"] for event in body["events"]]

    @staticmethod
    def targets(record: dict[str, Any]) -> list[str]:
        key = record["oss"]["object"]["key"]
        if not record["eventName"].startswith("ObjectCreated:"):
            return []
        return [
            name
            for name, filters in OSS_TRIGGERS.items()
            if any(key.startswith(f["prefix"]) and key.endswith(f["suffix"]) for f in filters)
        ]

    def invoke(self, function: str, event: bytes | dict[str, Any], request_id: str | None = None) -> Any:
        raw = event if isinstance(event, bytes) else json.dumps(event).encode()
        context = make_context(function, request_id=request_id or f"req-{uuid.uuid4().hex[:12]}")
        return self.functions[function].handler(raw, context)

    def deliver(self, record: dict[str, Any], times: int = 1) -> list[Any]:
        """Deliver one OSS record to each function it triggers, `times` times concurrently."""
        event = {"events": [record]}
        jobs = [(name, event) for name in self.targets(record) for _ in range(times)]
        self.delivered.extend((name, record["oss"]["object"]["key"]) for name, _ in jobs)
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            return list(pool.map(lambda job: self.invoke(*job), jobs))

    def tick(self) -> Any:
        event = {"triggerTime": "2026-11-29T00:00:00Z", "triggerName": "poll", "payload": "poll"}
        return self.invoke("on_timer", event)

    def pump(
        self, run_id: str | None = None, *, timeout: float = 30.0, duplicates: int = 1, raising_ok: bool = False
    ) -> dict[str, Any]:
        """Deliver every new event and tick the timer until the run (or every active run) is terminal.

        `raising_ok`: a delivery that raises is left to the timer (FC's retry would meet the same held intent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.new_records():
                try:
                    self.deliver(record, times=duplicates)
                except Exception:
                    if not raising_ok:
                        raise
            report = self.tick()
            if run_id is not None:
                run = self.run(run_id)["run"]
                if run["stage"] in ("DONE", "FAILED", "CANCELED"):
                    return dict(run)
            elif report["active"] == 0:
                return dict(report)
            time.sleep(0.1)
        raise AssertionError(f"pipeline did not settle in {timeout}s: {self.run(run_id) if run_id else report}")

    # -- the REST API (through the webhook function, as FC's HTTP trigger calls it) ---------------------------

    def api(
        self, method: str, path: str, body: Any = None, token: str | None = API_TOKEN, raw_body: str | None = None
    ) -> tuple[int, Any]:
        """Call the REST API; `raw_body` sends that text as the body instead of `body` as JSON."""
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        path_only, _, query = path.partition("?")
        event = {
            "version": "v1",
            "rawPath": path_only,
            "body": raw_body if raw_body is not None else "" if body is None else json.dumps(body),
            "isBase64Encoded": False,
            "headers": headers,
            "queryParameters": dict(part.split("=", 1) for part in query.split("&") if "=" in part),
            "requestContext": {"http": {"method": method, "path": path_only}, "requestId": uuid.uuid4().hex},
        }
        response = self.invoke("webhook", event)
        return int(response["statusCode"]), json.loads(response["body"])

    def run(self, run_id: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/runs/{run_id}")
        assert status == 200, body
        return dict(body)

    def runs(self) -> list[dict[str, Any]]:
        status, body = self.api("GET", "/runs")
        assert status == 200, body
        return list(body["runs"])

    def run_for_key(self, key: str) -> dict[str, Any]:
        matches = [run for run in self.runs() if run["source"].get("key") == key]
        assert len(matches) == 1, matches
        return matches[0]

    # -- the emulator -----------------------------------------------------------------------------------------

    def created(self) -> dict[str, int]:
        return dict(http_json(f"{self.url}/_emulator/state")["created"])

    def short_leases(self) -> None:
        """Leases as short as the lists' lag allows (none under the default profile): a re-claim comes as soon as
        what the first claim made may be listed (service-contract.md#C41)."""
        self.monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", "0")

    def end_leases(self) -> None:
        """Every intent's lease is over from now on, and so is the lists' lag: what Bailian made before now is
        listed (under the strict profile the emulator's clock moves past its lag, as the lease would have)."""
        self.monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", "0")
        if STRICT:
            self.monkeypatch.setenv("BAILIAN_FLOW_LIST_LAG_SECONDS", "0")
            http_json(f"{self.url}/_emulator/clock", "POST", {"advance": STRICT_LIST_LAG + 1})

    def fault(self, **rule: Any) -> None:
        http_json(f"{self.url}/_emulator/faults", "POST", {"rules": [rule]})

    def script(self, kind: str, outcome: str = "FAILED", count: int = 1) -> None:
        http_json(f"{self.url}/_emulator/script", "POST", {"kind": kind, "outcome": outcome, "count": count})

    def clear_faults(self) -> None:
        http_json(f"{self.url}/_emulator/faults", "DELETE")

    def fault_hits(self) -> list[int]:
        body = http_json(f"{self.url}/_emulator/faults")
        rules = body["rules"] if isinstance(body, dict) else body
        return [int(rule.get("hits", 0)) for rule in rules]

    def bailian(self, method: str, path: str, body: Any = None) -> Any:
        """Call the emulated Bailian API directly (as another client of the same account would)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-pipeline"}
        request = urllib.request.Request(f"{self.url}{path}", method=method, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def fine_tune(self, job_id: str) -> dict[str, Any]:
        return dict(self.bailian("GET", f"/api/v1/fine-tunes/{job_id}")["output"])

    def deliver_new(self, times: int = 1) -> list[dict[str, Any]]:
        """Deliver every event since the last look once (or `times` times); return the records delivered."""
        records = self.new_records()
        for record in records:
            self.deliver(record, times=times)
        return records

    def history(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.run(run_id)["history"])

    def object_count(self, prefix: str) -> int:
        async def count(store: Any) -> int:
            return len([info async for info in store.list(prefix)])

        return int(self._store_call(count))


SFT_SAMPLE = (ROOT / "samples" / "sft" / "train.jsonl").read_bytes()
