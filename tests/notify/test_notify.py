"""Notifier against a real aiohttp receiver on loopback that verifies with the reference implementation."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bailian_flow.config import Settings
from bailian_flow.notify import Notifier, redact_url, secret_key, sign

standardwebhooks = pytest.importorskip("standardwebhooks")  # test-only dependency, the spec's reference library

SECRET = "whsec_" + base64.b64encode(b"bailian-flow test key 0123456789").decode()
SECRET_PARTS = (SECRET, SECRET.removeprefix("whsec_"), "bailian-flow test key")


def test_sign_matches_the_spec_example_vector() -> None:
    # Published with the Standard Webhooks spec and its reference libraries' tests.
    assert (
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize("secret", [SECRET, SECRET.rstrip("=")], ids=["padded", "unpadded"])
def test_sign_agrees_with_the_reference_library(secret: str) -> None:
    body = '{"type":"run.done","data":{"run_id":"r-1","note":"完成"}}'
    reference = standardwebhooks.Webhook(SECRET).sign("r-1-7", datetime.fromtimestamp(1700000000, timezone.utc), body)
    assert sign(secret, "r-1-7", 1700000000, body.encode()) == reference


def test_raw_secret_is_used_as_its_bytes() -> None:
    reference = standardwebhooks.Webhook(b"plain secret").sign("m", datetime.fromtimestamp(5, timezone.utc), "{}")
    assert sign("plain secret", "m", 5, b"{}") == reference


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_", ""])
def test_bad_secret_is_refused_without_echoing_it(secret: str) -> None:
    with pytest.raises(ValueError) as caught:
        secret_key(secret)
    assert "not*base64" not in str(caught.value)


@dataclass
class Receiver:
    """A webhook endpoint: answers with the scripted statuses in turn (then 200) and records every request."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    processed: dict[str, Any] = field(default_factory=dict)  # what a deduping receiver acts on, by webhook-id

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        self.requests.append((headers, body))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.processed.setdefault(headers["webhook-id"], json.loads(body))
        return web.Response(status=status, headers={"Retry-After": "0"} if status == 429 else None)

    def verify(self, index: int, secret: str | bytes = SECRET) -> Any:
        headers, body = self.requests[index]
        return standardwebhooks.Webhook(secret).verify(body, headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/bailian", state.handle)
    runner = web.AppRunner(app, access_log=None)  # the receiver's own log is not ours to check
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/hooks/bailian?token=query-secret"
    try:
        yield state
    finally:
        await runner.cleanup()


def fast(url: str | None, secret: str | None = SECRET, **options: Any) -> Notifier:
    return Notifier(url, secret, backoff=0.01, **options)


async def test_delivered_event_verifies_with_the_reference_library(receiver: Receiver) -> None:
    data = {"run_id": "r-20240611-ab12", "stage": "DONE", "deployed_model": "qwen3-8b-ft-1", "备注": "完成"}

    assert await fast(receiver.url).send("run.DONE", data, msg_id="r-20240611-ab12-9") is True

    assert len(receiver.requests) == 1
    payload = receiver.verify(0)
    assert payload["type"] == "run.DONE"
    assert payload["data"] == data
    assert datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    headers = receiver.requests[0][0]
    assert headers["webhook-id"] == "r-20240611-ab12-9"
    assert headers["Content-Type"] == "application/json"


async def test_server_errors_are_retried_until_success(receiver: Receiver) -> None:
    receiver.statuses = [500, 429, 503]

    assert await fast(receiver.url, attempts=4).send("run.RUNNING", {"seq": 3}, msg_id="r-1-3") is True

    assert len(receiver.requests) == 4
    assert {headers["webhook-id"] for headers, _ in receiver.requests} == {"r-1-3"}
    for index in range(4):
        assert receiver.verify(index)["data"] == {"seq": 3}  # every attempt is signed afresh and valid


async def test_a_slow_receiver_times_out_and_is_retried(receiver: Receiver) -> None:
    receiver.delays = [1.0]
    assert await fast(receiver.url, timeout=0.2).send("run.DONE", {}, msg_id="r-2-1") is True
    assert len(receiver.requests) == 2


async def test_gives_up_after_the_attempts_and_returns_false(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500] * 10

    with caplog.at_level(logging.DEBUG, logger="bailian_flow.notify"):
        assert await fast(receiver.url, attempts=3).send("run.FAILED", {"error": "x"}, msg_id="r-3-4") is False

    assert len(receiver.requests) == 3
    assert "not delivered after 3 attempt(s): HTTP 500" in caplog.text
    assert "r-3-4" in caplog.text


async def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [400]
    assert await fast(receiver.url).send("run.DONE", {}, msg_id="r-4-1") is False
    assert len(receiver.requests) == 1


async def test_unreachable_receiver_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: every attempt is refused.
    with caplog.at_level(logging.WARNING, logger="bailian_flow.notify"):
        assert await fast(f"http://127.0.0.1:{port}/hook").send("run.DONE", {}, msg_id="r-5-1") is False
    assert "ClientConnectorError" in caplog.text


async def test_redelivery_keeps_the_message_id_so_the_receiver_dedupes(receiver: Receiver) -> None:
    notifier = fast(receiver.url)
    # At-least-once: a retried pipeline step sends the same event again with the same deterministic id.
    for _ in range(2):
        assert await notifier.send("run.FILE_READY", {"file_id": "f-1"}, msg_id="r-6-2")
    assert await notifier.send("run.TRAINING", {"job_id": "ft-1"}, msg_id="r-6-3")

    assert [headers["webhook-id"] for headers, _ in receiver.requests] == ["r-6-2", "r-6-2", "r-6-3"]
    assert [event["type"] for event in receiver.processed.values()] == ["run.FILE_READY", "run.TRAINING"]


async def test_without_url_nothing_is_sent(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    for notifier in (Notifier(None, SECRET), Notifier("", None), Notifier.from_settings(Settings())):
        assert notifier.enabled is False
        with caplog.at_level(logging.DEBUG, logger="bailian_flow.notify"):
            assert await notifier.send("run.DONE", {"a": 1}, msg_id="r-7-1") is False
    assert receiver.requests == []
    assert caplog.records == []


async def test_from_settings_signs_with_the_configured_secret(receiver: Receiver) -> None:
    settings = Settings(webhook_url=receiver.url, webhook_secret=SecretStr(SECRET))
    assert await Notifier.from_settings(settings, backoff=0.01).send("run.DONE", {}, msg_id="r-8-1")
    assert receiver.verify(0)["type"] == "run.DONE"


async def test_raw_secret_delivery_verifies_with_the_secret_bytes(receiver: Receiver) -> None:
    assert await fast(receiver.url, "plain-shared-secret").send("run.DONE", {}, msg_id="r-9-1")
    receiver.verify(0, b"plain-shared-secret")
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        receiver.verify(0, SECRET)


async def test_without_secret_the_request_is_unsigned(receiver: Receiver) -> None:
    assert await fast(receiver.url, None).send("run.DONE", {}, msg_id="r-10-1")
    headers = receiver.requests[0][0]
    assert headers["webhook-id"] == "r-10-1" and "webhook-timestamp" in headers
    assert "webhook-signature" not in headers


async def test_non_json_values_in_data_do_not_fail_the_send(receiver: Receiver) -> None:
    when = datetime(2024, 6, 11, 8, 30, tzinfo=timezone.utc)
    assert await fast(receiver.url).send("run.DONE", {"at": when}, msg_id="r-11-1")
    assert receiver.verify(0)["data"] == {"at": "2024-06-11 08:30:00+00:00"}


async def test_a_given_session_is_used_and_left_open(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        assert await fast(receiver.url, session=session).send("run.DONE", {}, msg_id="r-12-1")
        assert not session.closed
    assert len(receiver.requests) == 1


async def test_secret_never_appears_in_logs_or_repr(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [500, 500, 200, 500, 500, 500]
    notifier = fast(receiver.url, attempts=3)
    with caplog.at_level(logging.DEBUG):
        assert await notifier.send("run.DONE", {}, msg_id="r-13-1")
        assert not await notifier.send("run.DONE", {}, msg_id="r-13-2")
        assert not await fast("http://[::1", attempts=1).send("run.DONE", {}, msg_id="r-13-3")  # invalid URL

    shown = caplog.text + repr(notifier)
    assert caplog.text  # the failures were logged
    for part in (*SECRET_PARTS, "query-secret"):
        assert part not in shown
    assert repr(notifier).startswith(f"Notifier(url='{receiver.url.split('?')[0]}', secret='**********'")


def test_redact_url_keeps_only_scheme_host_and_path() -> None:
    assert redact_url("https://user:pw@hooks.example.com:8443/p/a?token=t#f") == "https://hooks.example.com:8443/p/a"
