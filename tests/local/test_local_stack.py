"""LocalStack against a throwaway s.yaml: OSS triggers with FC's filters and retries, timers, the invoke API."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from local_app import BUCKET, write_app

from bailian_flow.local.stack import LocalStack


async def _put(session: aiohttp.ClientSession, url: str, bucket: str, key: str, data: bytes = b"{}\n") -> None:
    async with session.put(f"{url}/{bucket}/{key}", data=data) as response:
        assert response.status == 200, await response.text()


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def _eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def stack(tmp_path: Path, emulator_reset: Any) -> AsyncIterator[LocalStack]:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="@every 1s")
    async with LocalStack(
        config, emulator_url=emulator_reset.url, retry_base_delay=0.05, env={"LOCAL_TEST_EXTRA": "1"}
    ) as running:
        yield running


async def test_oss_events_are_filtered_like_fc_and_retried_until_delivered(stack: LocalStack) -> None:
    out = Path(os.environ["LOCAL_TEST_OUT"])
    async with aiohttp.ClientSession() as session:
        await _put(session, stack.oss_endpoint, BUCKET, "datasets/a.jsonl")
        await _put(session, stack.oss_endpoint, BUCKET, "datasets/notes.txt")  # suffix mismatch
        await _put(session, stack.oss_endpoint, BUCKET, "runs/x/b.jsonl")  # prefix mismatch
        await _put(session, stack.oss_endpoint, "another-bucket", "datasets/c.jsonl")  # bucket mismatch
        await _put(session, stack.oss_endpoint, BUCKET, "datasets/sub/my file é.jsonl")
        async with session.delete(f"{stack.oss_endpoint}/{BUCKET}/datasets/a.jsonl") as response:
            assert response.status in (200, 204)
    await stack.wait_idle(timeout=20)

    deliveries = [line["event"]["events"] for line in _lines(out / "oss.jsonl")]
    assert all(len(events) == 1 for events in deliveries)
    keys = [events[0]["oss"]["object"]["key"] for events in deliveries]
    # The first delivery failed on purpose and was delivered again: at least once, never lost.
    assert sorted(set(keys)) == ["datasets/a.jsonl", "datasets/sub/my file é.jsonl"]
    assert len(keys) == 3
    assert {events[0]["eventName"] for events in deliveries} == {"ObjectCreated:PutObject"}

    oss_records = [r for r in stack.records if r.function == "fn_oss"]
    assert [r.ok for r in oss_records].count(False) == 1
    failed = next(r for r in oss_records if not r.ok)
    assert "first delivery fails on purpose" in (failed.error or "")
    retried = [r for r in oss_records if r.request_id == failed.request_id]
    assert [(r.attempt, r.ok) for r in retried] == [(1, False), (2, True)]
    assert stack.dispatcher.dropped == []


async def test_timer_fires_on_its_cron_expression(stack: LocalStack) -> None:
    out = Path(os.environ["LOCAL_TEST_OUT"])
    await _eventually(lambda: len(_lines(out / "timer.jsonl")) >= 2, timeout=6)
    first, second = _lines(out / "timer.jsonl")[:2]
    assert first["triggerName"] == "tick" and first["payload"] == "poll"
    assert first["triggerTime"].endswith("Z")
    assert first["triggerTime"] <= second["triggerTime"]
    assert {r.source for r in stack.records if r.function == "fn_timer"} == {"timer:tick"}


async def test_invoke_sync_returns_the_result_and_fc_errors(stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(stack.invoke_endpoint("fn_echo"), data=b'{"hello": "world"}') as response:
            assert response.status == 200
            assert response.headers["x-fc-request-id"]
            body = await response.json()
        assert body == {"echo": {"hello": "world"}, "region": "cn-shanghai", "token_set": True}

        async with session.post(stack.invoke_endpoint("fn_echo"), data=b'{"raise": true}') as response:
            assert response.status == 500
            assert response.headers["x-fc-error-type"] == "UnhandledInvocationError"
            error = await response.json()
        assert error["errorType"] == "KeyError" and "asked to fail" in error["errorMessage"]
        assert error["stackTrace"]

        async with session.post(stack.invoke_endpoint("nope"), data=b"{}") as response:
            assert response.status == 404
            assert (await response.json())["Code"] == "FunctionNotFound"


async def test_invoke_async_is_queued_and_retried(stack: LocalStack) -> None:
    out = Path(os.environ["LOCAL_TEST_OUT"])
    headers = {"x-fc-invocation-type": "Async"}
    async with aiohttp.ClientSession() as session:
        async with session.post(stack.invoke_endpoint("fn_echo"), data=b'{"n": 1}', headers=headers) as response:
            assert response.status == 202
        async with session.post(stack.invoke_endpoint("fn_echo"), data=b'{"raise": 1}', headers=headers) as response:
            assert response.status == 202
            failing_id = response.headers["x-fc-request-id"]
    await stack.wait_idle(timeout=20)
    bodies = _lines(out / "echo.jsonl")
    assert {"n": 1} in bodies
    # maxAsyncRetryAttempts: 1 → two attempts, then dropped.
    assert bodies.count({"raise": 1}) == 2
    attempts = [r.attempt for r in stack.records if r.request_id == failing_id]
    assert attempts == [1, 2]
    assert [d.request_id for d in stack.dispatcher.dropped] == [failing_id]


async def test_environment_is_local_and_restored(tmp_path: Path, emulator_reset: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    before = dict(os.environ)
    async with LocalStack(config, emulator_url=emulator_reset.url, api_token="tok-123") as stack:
        assert os.environ["DASHSCOPE_BASE_URL"] == emulator_reset.url
        assert os.environ["BAILIAN_FLOW_OSS_ENDPOINT"] == emulator_reset.url
        assert os.environ["BAILIAN_FLOW_API_TOKEN"] == "tok-123"
        assert os.environ["DASHSCOPE_API_KEY"].startswith("sk-local-")
        assert os.environ["BAILIAN_FLOW_BUCKET"] == BUCKET
        assert os.environ["LOCAL_TEST_OUT"] == str(out)
        assert os.environ.get("PYTHONPATH") == before.get("PYTHONPATH")  # cloud-only path never applied
        assert stack.bucket == BUCKET
        # Batch finish callbacks come back to the stack's own HTTP trigger, with a secret nobody had to set.
        assert os.environ["BAILIAN_FLOW_CALLBACK_URL"] == stack.http_url
        assert len(os.environ["BAILIAN_FLOW_CALLBACK_SECRET"]) >= 32
    assert dict(os.environ) == before


async def test_a_callback_url_the_user_chose_is_kept(tmp_path: Path, emulator_reset: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    chosen = {"BAILIAN_FLOW_CALLBACK_URL": "http://127.0.0.1:9/relay", "BAILIAN_FLOW_CALLBACK_SECRET": "mine"}
    async with LocalStack(config, emulator_url=emulator_reset.url, env=chosen):
        assert {name: os.environ[name] for name in chosen} == chosen
    # One that would leave the machine is replaced: locally nothing but loopback is called.
    far = {"BAILIAN_FLOW_CALLBACK_URL": "https://example.com/hook"}
    async with LocalStack(config, emulator_url=emulator_reset.url, env=far) as stack:
        assert os.environ["BAILIAN_FLOW_CALLBACK_URL"] == stack.http_url
