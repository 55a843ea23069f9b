"""Outgoing notifications from the real functions: one signed Standard Webhooks message per state change.

The receiver is a real HTTP server on loopback; signatures are checked with the spec's reference library.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from harness import BUCKET, SFT_SAMPLE, Pipeline

standardwebhooks = pytest.importorskip("standardwebhooks")

KEY = "datasets/notify/train.jsonl"
RAW_KEY = b"pipeline notify key 0123456789ab"
SECRET = "whsec_" + base64.b64encode(RAW_KEY).decode()
SECRET_FORMS = (SECRET, SECRET.removeprefix("whsec_"), RAW_KEY.decode())


class Receiver:
    """Records every request; answers 204."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verified(self) -> list[tuple[str, dict[str, Any]]]:
        """(webhook-id, payload) of every request, each signature checked by the reference library."""
        webhook = standardwebhooks.Webhook(SECRET)
        with self.lock:
            requests = list(self.requests)
        return [(headers["webhook-id"], webhook.verify(body, headers)) for headers, body in requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def notifying(emulator_reset: Any, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Pipeline:
    return Pipeline(
        emulator_reset.url,
        monkeypatch,
        BAILIAN_FLOW_WEBHOOK_URL=receiver.url,
        BAILIAN_FLOW_WEBHOOK_SECRET=SECRET,
    )


def _messages_of(receiver: Receiver, run_id: str) -> dict[str, dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}
    for msg_id, payload in receiver.verified():
        if payload["data"]["run_id"] != run_id:
            continue
        assert msg_id not in messages, f"{msg_id} sent twice"
        messages[msg_id] = payload
    return messages


@pytest.mark.parametrize("duplicates", [1, 3])
def test_a_full_run_sends_one_signed_message_per_state_change(
    notifying: Pipeline, receiver: Receiver, duplicates: int
) -> None:
    notifying.put(KEY, SFT_SAMPLE)
    notifying.pump(duplicates=duplicates)  # concurrent duplicate deliveries: only the winner of a seq notifies
    run = notifying.run_for_key(KEY)
    assert run["stage"] == "DONE"
    history = notifying.history(run["run_id"])

    messages = _messages_of(receiver, run["run_id"])

    assert sorted(messages) == sorted(f"{run['run_id']}-{entry['seq']}" for entry in history)
    for entry in history:
        payload = messages[f"{run['run_id']}-{entry['seq']}"]
        assert payload["type"] == f"run.{entry['stage']}"
        assert payload["data"]["seq"] == entry["seq"]
        assert payload["data"]["changed"] == entry["changed"]
    final = messages[f"{run['run_id']}-{history[-1]['seq']}"]
    assert final["type"] == "run.done"
    assert final["data"]["stage"] == "DONE"
    assert final["data"]["deployed_model"] == run["deployed_model"]
    assert final["data"]["source"]["bucket"] == BUCKET


def test_a_failed_run_sends_run_failed_with_the_error(notifying: Pipeline, receiver: Receiver) -> None:
    bad = SFT_SAMPLE.replace(b'"role": "user"', b'"role": "usr"', 1)
    run_id = notifying.upload(KEY, bad)

    messages = _messages_of(receiver, run_id)

    failed = [payload for payload in messages.values() if payload["type"] == "run.failed"]
    assert len(failed) == 1
    data = failed[0]["data"]
    assert data["stage"] == "FAILED"
    assert data["error"]["code"] == "InvalidDataset"
    assert data["error"]["object"] == KEY
    assert (data["error"]["line"], data["error"]["field"]) == (1, "messages[1].role")
    assert "usr" in data["error"]["reason"]
    assert set(messages) == {f"{run_id}-{entry['seq']}" for entry in notifying.history(run_id)}


def test_a_failed_job_sends_run_failed(notifying: Pipeline, receiver: Receiver) -> None:
    notifying.script("fine_tune")
    run_id = notifying.upload(KEY, SFT_SAMPLE)
    assert notifying.pump(run_id)["stage"] == "FAILED"

    failed = [p for p in _messages_of(receiver, run_id).values() if p["type"] == "run.failed"]

    assert [p["data"]["error"]["code"] for p in failed] == ["JobFailed"]


def test_the_secret_is_never_logged_nor_stored(
    notifying: Pipeline, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run_id = notifying.upload(KEY, SFT_SAMPLE)
    notifying.pump(run_id)
    notifying.upload("datasets/notify/bad.jsonl", b"{oops\n")
    assert receiver.requests, "notifications were sent"

    stored = b"".join(notifying.get(key) or b"" for key in _keys(notifying, "runs/"))
    api_views = json.dumps([notifying.run(run_id), notifying.runs()])
    bodies = b"".join(body for _, body in receiver.requests)
    for secret in SECRET_FORMS:
        assert secret not in caplog.text
        assert secret.encode() not in stored
        assert secret not in api_views
        assert secret.encode() not in bodies
    assert "bailian_flow" in caplog.text, "the pipeline's own logs were captured"


def _keys(pipeline: Pipeline, prefix: str) -> list[str]:
    async def keys(store: Any) -> list[str]:
        return [info.key async for info in store.list(prefix)]

    found: list[str] = pipeline._store_call(keys)
    assert found
    return found


def test_teardown_is_notified_as_run_undeployed(notifying: Pipeline, receiver: Receiver) -> None:
    run_id = notifying.upload(KEY, SFT_SAMPLE)
    notifying.pump(run_id)

    status, body = notifying.api("POST", f"/runs/{run_id}/teardown")

    assert status == 200
    last = notifying.history(run_id)[-1]
    payload = _messages_of(receiver, run_id)[f"{run_id}-{last['seq']}"]
    assert payload["type"] == "run.undeployed"
    assert payload["data"]["stage"] == "DONE"
    assert payload["data"]["undeployed_at"] == body["run"]["undeployed_at"]


def test_a_job_pruned_by_another_runs_retention_is_announced_to_its_own_run(
    emulator_reset: Any, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    notifying = Pipeline(
        emulator_reset.url,
        monkeypatch,
        BAILIAN_FLOW_WEBHOOK_URL=receiver.url,
        BAILIAN_FLOW_WEBHOOK_SECRET=SECRET,
        BAILIAN_FLOW_JOB_RETENTION="keep-last-1",
    )
    older = notifying.upload("datasets/notify/a.jsonl", SFT_SAMPLE)
    notifying.pump(older)
    newer = notifying.upload("datasets/notify/b.jsonl", SFT_SAMPLE)
    notifying.pump(newer)

    last = notifying.history(older)[-1]
    payload = _messages_of(receiver, older)[f"{older}-{last['seq']}"]

    assert payload["type"] == "run.job_deleted"
    assert payload["data"]["job_deleted"] is True and payload["data"]["stage"] == "DONE"
    assert payload["data"]["changed"] == last["changed"] and newer in last["changed"]
