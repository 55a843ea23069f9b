"""The HTTP trigger through functions-framework: FC's HTTP event in, FC's response shape out."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from local_app import write_app
from multidict import CIMultiDict

from bailian_flow.local.stack import LocalStack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    """Starts its own emulator subprocess, as `bailian-flow dev` does."""
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    async with LocalStack(config, functions=["fn_http"], time_scale=50) as running:
        yield running


async def test_stack_reports_its_endpoints(stack: LocalStack) -> None:
    assert stack.emulator_url.startswith("http://127.0.0.1:")
    assert stack.http_url.startswith("http://127.0.0.1:") and stack.http_url != stack.emulator_url
    assert list(stack.functions) == ["fn_http"]
    async with aiohttp.ClientSession() as session, session.get(f"{stack.emulator_url}/_emulator/state") as response:
        assert response.status == 200


async def test_get_becomes_the_fc_http_event(stack: LocalStack) -> None:
    headers = CIMultiDict([("X-Multi", "a"), ("X-Multi", "b"), ("User-Agent", "tester/1")])
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{stack.http_url}/echo/a%20b%C3%A9?x=1&x=2&y=z%20z", headers=headers) as response,
    ):
        assert response.status == 200
        assert response.headers["X-Echo"] == "yes"
        body = await response.json()
    event: dict[str, Any] = body["event"]
    assert body["function"] == "fn_http"
    assert event["version"] == "v1"
    assert event["rawPath"] == "/echo/a%20b%C3%A9"
    assert event["requestContext"]["http"]["path"] == "/echo/a bé"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["userAgent"] == "tester/1"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["queryParameters"] == {"x": "1,2", "y": "z z"}
    assert event["headers"]["X-Multi"] == "a,b"
    assert event["body"] == "" and event["isBase64Encoded"] is False
    assert event["requestContext"]["timeEpoch"].isdigit()


async def test_binary_body_is_base64_and_text_body_is_not(stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as session:
        binary = b"\x00\xff\x10 binary"
        async with session.post(
            f"{stack.http_url}/upload", data=binary, headers={"Content-Type": "application/octet-stream"}
        ) as response:
            event = (await response.json())["event"]
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == binary

        async with session.post(f"{stack.http_url}/runs", json={"oss_key": "datasets/é.jsonl"}) as response:
            event = (await response.json())["event"]
        assert event["isBase64Encoded"] is False
        assert json.loads(event["body"]) == {"oss_key": "datasets/é.jsonl"}
        assert event["requestContext"]["http"]["method"] == "POST"


async def test_response_shape_errors_and_methods(stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.http_url}/binary") as response:
            assert response.status == 201
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert await response.read() == b"\x00\x01\xff"
        async with session.get(f"{stack.http_url}/boom") as response:
            assert response.status == 500
            assert response.headers["x-fc-error-type"] == "UnhandledInvocationError"
            error = await response.json()
            assert error["errorType"] == "ValueError" and error["errorMessage"] == "boom"
        async with session.put(f"{stack.http_url}/echo", data=b"x") as response:
            assert response.status == 405  # the trigger allows GET and POST only
