"""The emulator's streaming form reader and pipelined blob ingest.

The reader is fed by a real aiohttp StreamReader, in pieces cut at every offset, and must agree with aiohttp's
own MultipartReader on the same bytes; over loopback, large uploads sent in odd pieces must be stored with the
right size and md5, and a broken upload must leave nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import BodyPartReader, MultipartReader, StreamReader
from aiohttp.base_protocol import BaseProtocol
from emulator_support import Emulator

from bailian_flow.emulator.form_stream import FormError, FormReader, form_boundary

BOUNDARY = b"b0und4ry-xyz"
DELIMITER = b"\r\n--" + BOUNDARY


def form(parts: list[tuple[str, bytes, str | None]], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    body = preamble
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n"
        body += value + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n" + epilogue


# Bodies that look like the delimiter without being it, right where a piece boundary may cut them.
TRICKY = b"".join(
    [b"\r\n--" + BOUNDARY[:-1], b"\r", b"\r\n", b"\r\n-", b"--" + BOUNDARY, b"\n--" + BOUNDARY, b"\r\n--" + b"x"]
)
PARTS = [("purpose", b"fine-tune", None), ("files", TRICKY + b"tail", "t.jsonl"), ("files", b"", "empty.jsonl")]


def stream_of(body: bytes, cuts: list[int]) -> StreamReader:
    loop = asyncio.get_running_loop()
    reader = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    start = 0
    for cut in [*cuts, len(body)]:
        if cut > start:
            reader.feed_data(body[start:cut])
            start = cut
    reader.feed_eof()
    return reader


async def read_ours(content: StreamReader) -> list[tuple[str | None, str | None, bytes]]:
    reader = FormReader(content, BOUNDARY)
    parts = []
    while (part := await reader.next()) is not None:
        parts.append((part.name, part.filename, b"".join([bytes(piece) async for piece in reader.chunks()])))
    return parts


async def read_aiohttp(body: bytes) -> list[tuple[str | None, str | None, bytes]]:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}"}
    reader = MultipartReader(headers, stream_of(body, []))
    parts = []
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        parts.append((part.name, part.filename, bytes(await part.read())))
    return parts


async def test_agrees_with_aiohttp_wherever_the_pieces_are_cut() -> None:
    body = form(PARTS, preamble=b"a preamble\r\n", epilogue=b"an epilogue")
    expected = await read_aiohttp(body)
    assert expected[1][2] == TRICKY + b"tail"
    for cut in range(len(body) + 1):
        assert await read_ours(stream_of(body, [cut])) == expected, cut
    assert await read_ours(stream_of(body, list(range(0, len(body), 3)))) == expected
    assert await read_ours(stream_of(body, list(range(len(body))))) == expected  # one byte at a time


async def test_unread_bodies_are_skipped_and_whitespace_after_a_boundary_is_allowed() -> None:
    body = form(PARTS).replace(b"--" + BOUNDARY + b"\r\n", b"--" + BOUNDARY + b" \t\r\n")
    reader = FormReader(stream_of(body, [40, 41, 90]), BOUNDARY)
    names = []
    while (part := await reader.next()) is not None:
        names.append((part.name, part.filename, part.headers["content-disposition"].startswith("form-data")))
    assert names == [("purpose", None, True), ("files", "t.jsonl", True), ("files", "empty.jsonl", True)]


@pytest.mark.parametrize(
    "body",
    [
        form(PARTS)[:-20],  # cut before the closing boundary
        b"--" + BOUNDARY + b"junk\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY + b"\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n",
        b"no boundary at all",
    ],
)
async def test_malformed_forms_raise_form_error(body: bytes) -> None:
    with pytest.raises(FormError):
        await read_ours(stream_of(body, [7, 300]))


def test_boundary_comes_from_the_content_type() -> None:
    assert form_boundary('multipart/form-data; boundary="a b:c"') == b"a b:c"
    assert form_boundary("multipart/form-data; charset=utf-8; boundary=xyz") == b"xyz"
    for bad in ("multipart/form-data", "multipart/form-data; boundary=" + "x" * 71, "text/plain; boundary="):
        with pytest.raises(FormError):
            form_boundary(bad)


async def _post(emulator: Emulator, body: AsyncIterator[bytes], length: int | None = None) -> tuple[int, Any]:
    headers = {
        "Authorization": f"Bearer {emulator.api_key}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}",
    }
    if length is not None:
        headers["Content-Length"] = str(length)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{emulator.url}/api/v1/files", data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def _pieces(body: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    start, index = 0, 0
    while start < len(body):
        size = sizes[index % len(sizes)]
        yield body[start : start + size]
        start += size
        index += 1
        await asyncio.sleep(0)


async def test_large_upload_in_odd_pieces_is_stored_with_its_md5(emulator_reset: Emulator) -> None:
    content = (os.urandom(1 << 16) + TRICKY) * 80 + b"end"  # ~5 MiB, several ingest batches
    body = form([("purpose", b"fine-tune", None), ("files", content, "big.jsonl"), ("descriptions", b"d", None)])
    status, answer = await _post(emulator_reset, _pieces(body, [1, 70_001, 3, 262_144, 1_048_577]))
    assert status == 200, answer
    file_id = answer["data"]["uploaded_files"][0]["file_id"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{emulator_reset.url}/api/v1/files/{file_id}",
            headers={"Authorization": f"Bearer {emulator_reset.api_key}"},
        ) as response,
    ):
        info = (await response.json())["data"]
    assert info["size"] == len(content)
    assert info["md5"] == hashlib.md5(content).hexdigest()
    assert info["description"] == "d"


async def test_malformed_upload_is_a_400_and_keeps_nothing(emulator_reset: Emulator) -> None:
    body = form([("files", os.urandom(3 << 20), "x.jsonl")])[:-30]  # no closing boundary
    status, answer = await _post(emulator_reset, _pieces(body, [1 << 20]))
    assert status == 400 and answer["code"] == "InvalidParameter"
    await asyncio.sleep(0.2)  # a half-written blob is dropped once its worker thread is done with it
    assert list((emulator_reset.data_dir / "files" / ".tmp").iterdir()) == []
    assert [path for path in (emulator_reset.data_dir / "files").rglob("*") if path.is_file()] == []


async def test_upload_cut_midway_keeps_nothing(emulator_reset: Emulator) -> None:
    body = form([("files", os.urandom(4 << 20), "x.jsonl")])

    async def cut_short() -> AsyncIterator[bytes]:
        async for piece in _pieces(body[: 3 << 20], [1 << 20]):
            yield piece
        raise ConnectionResetError("client gives up")

    with pytest.raises(aiohttp.ClientError):
        await _post(emulator_reset, cut_short(), length=len(body))
    for _ in range(50):  # the emulator notices the closed connection asynchronously
        await asyncio.sleep(0.05)
        if not list((emulator_reset.data_dir / "files" / ".tmp").iterdir()):
            break
    assert list((emulator_reset.data_dir / "files" / ".tmp").iterdir()) == []


async def test_nested_multipart_part_is_a_400_and_keeps_the_files_before_it_nowhere(
    emulator_reset: Emulator,
) -> None:
    body = form([("files", b'{"a": 1}\n', "one.jsonl")])[: -len(b"--" + BOUNDARY + b"--\r\n")]
    body += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"\r\n'
    body += b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner--\r\n--" + BOUNDARY + b"--\r\n"
    status, answer = await _post(emulator_reset, _pieces(body, [len(body)]))
    assert status == 400 and "Nested" in answer["message"]
    await asyncio.sleep(0.1)
    assert [path for path in (emulator_reset.data_dir / "files").rglob("*") if path.is_file()] == []
