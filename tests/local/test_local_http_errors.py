"""The local HTTP trigger answers what its HTTP parser refuses (headers or URL too long, too many headers, a
malformed request line or chunked body) in the API's JSON, `{"error": {"code", "message"}}`, never an HTML page;
and a well-formed chunked request still reaches the function whole."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from local_app import write_app

from bailian_flow.local.stack import LocalStack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    out = tmp_path / "out"
    out.mkdir()
    config = write_app(tmp_path / "app", out, timer="0 0 4 * * *")
    async with LocalStack(config, functions=["fn_http"], time_scale=50) as running:
        yield running


def exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer to its end (the server closes the connection after an error)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1."), answer[:300]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


CLOSE = b"Host: local\r\nConnection: close\r\n"
MALFORMED = [
    (
        "a 200 KB Authorization",
        b"GET /runs HTTP/1.1\r\n" + CLOSE + b"Authorization: Bearer " + b"a" * 200_000 + b"\r\n\r\n",
        431,
        "RequestHeaderFieldsTooLarge",
    ),
    (
        "101 headers",
        b"GET /runs HTTP/1.1\r\n" + CLOSE + b"".join(b"X-H%d: v\r\n" % n for n in range(101)) + b"\r\n",
        431,
        "RequestHeaderFieldsTooLarge",
    ),
    ("a 70 KB URL", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + CLOSE + b"\r\n", 414, "URITooLong"),
    ("a request line of one word", b"GARBAGE\r\n" + CLOSE + b"\r\n", 400, "BadRequest"),
    ("a malformed version", b"GET /runs HTTP/x.y\r\n" + CLOSE + b"\r\n", 400, "BadRequest"),
    ("HTTP/2 over a 1.1 socket", b"GET /runs HTTP/2.0\r\n" + CLOSE + b"\r\n", 505, "HTTPVersionNotSupported"),
    (
        "a body over FC's 32 MB",
        b"POST /runs HTTP/1.1\r\n" + CLOSE + b"Content-Type: application/json\r\nContent-Length: 40000000\r\n\r\n{}",
        413,
        "PayloadTooLarge",
    ),
    (
        "a bad chunk size",
        b"POST /runs HTTP/1.1\r\n" + CLOSE + b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b"ZZZ\r\nabc\r\n0\r\n\r\n",
        400,
        "BadRequest",
    ),
    (
        "a chunk longer than its size",
        b"POST /runs HTTP/1.1\r\n" + CLOSE + b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b"2\r\nabcdef\r\n0\r\n\r\n",
        400,
        "BadRequest",
    ),
]


@pytest.mark.parametrize(("case", "request_bytes", "status", "code"), MALFORMED, ids=[c[0] for c in MALFORMED])
async def test_parser_errors_answer_json(
    stack: LocalStack, case: str, request_bytes: bytes, status: int, code: str
) -> None:
    import asyncio

    got, headers, body = await asyncio.to_thread(exchange, stack.http_url, request_bytes)

    assert got == status, (case, body[:300])
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    assert len(body) < 1024 and b"aaaaaaaa" not in body  # the offending input is not echoed back
    assert b"<html" not in body.lower()


async def test_a_well_formed_chunked_body_reaches_the_function_whole(stack: LocalStack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"a": ', b'"' + b"x" * 100_000 + b'"', b"}"):
            yield part

    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{stack.http_url}/echo", data=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status == 200
        event = (await response.json())["event"]
    assert event["headers"].get("Transfer-Encoding") == "chunked"
    assert json.loads(event["body"]) == {"a": "x" * 100_000}


async def test_a_long_but_acceptable_header_still_reaches_the_function(stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{stack.http_url}/echo", headers={"X-Long": "v" * 8000})
        assert response.status == 200
        assert (await response.json())["event"]["headers"]["X-Long"] == "v" * 8000
