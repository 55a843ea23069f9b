"""The emulator's OSS subset over raw HTTP: put/get/head/delete, create-only, ranges, preconditions, metadata."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from emulator_support import Emulator, start_emulator
from yarl import URL

BUCKET = "test-bucket"
ODD_KEYS = ["datasets/with space.jsonl", "datasets/中文 数据.jsonl", "datasets/100%+done.jsonl", "a//b/../c"]


class Oss:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    def object_url(self, key: str, bucket: str = BUCKET) -> URL:
        return URL(f"{self.url}/{bucket}/{quote(key)}", encoded=True)

    async def put(self, key: str, data: bytes, **headers: str) -> aiohttp.ClientResponse:
        async with self.session.put(self.object_url(key), data=data, headers=headers) as response:
            await response.read()
            return response

    async def get(self, key: str, **headers: str) -> tuple[aiohttp.ClientResponse, bytes]:
        async with self.session.get(self.object_url(key), headers=headers) as response:
            return response, await response.read()


@pytest.fixture
async def oss(emulator_reset: Emulator) -> AsyncIterator[Oss]:
    async with aiohttp.ClientSession() as session:
        yield Oss(session, emulator_reset.oss_endpoint)


def error_code(body: bytes) -> str:
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert root.findtext("RequestId")
    return root.findtext("Code") or ""


async def test_put_then_get_round_trips_bytes_etag_and_metadata(oss: Oss) -> None:
    data = b'{"messages": []}\n' * 1000
    put = await oss.put(
        "datasets/train.jsonl", data, **{"Content-Type": "application/jsonl", "x-oss-meta-Flow-Model": "qwen3-14b"}
    )
    assert put.status == 200
    etag = '"' + hashlib.md5(data).hexdigest().upper() + '"'
    assert put.headers["ETag"] == etag
    assert put.headers["x-oss-request-id"]
    response, body = await oss.get("datasets/train.jsonl")
    assert response.status == 200
    assert body == data
    assert response.headers["ETag"] == etag
    assert response.headers["Content-Type"] == "application/jsonl"
    assert response.headers["x-oss-meta-flow-model"] == "qwen3-14b"
    assert response.headers["Last-Modified"].endswith("GMT")
    async with oss.session.head(oss.object_url("datasets/train.jsonl")) as head:
        assert head.status == 200
        assert int(head.headers["Content-Length"]) == len(data)
        assert head.headers["ETag"] == etag
        assert head.headers["x-oss-meta-flow-model"] == "qwen3-14b"


async def test_forbid_overwrite_is_create_only(oss: Oss, emulator_reset: Emulator) -> None:
    first = await oss.put("runs/r1/00000001-start.json", b"first", **{"x-oss-forbid-overwrite": "true"})
    assert first.status == 200
    async with oss.session.put(
        oss.object_url("runs/r1/00000001-start.json"), data=b"second", headers={"x-oss-forbid-overwrite": "true"}
    ) as response:
        assert response.status == 409
        assert error_code(await response.read()) == "FileAlreadyExists"
        assert response.headers["x-oss-request-id"]
    _, body = await oss.get("runs/r1/00000001-start.json")
    assert body == b"first"
    overwrite = await oss.put("runs/r1/00000001-start.json", b"third")
    assert overwrite.status == 200
    _, body = await oss.get("runs/r1/00000001-start.json")
    assert body == b"third"
    async with oss.session.get(f"{emulator_reset.url}/_emulator/state") as response:
        state = await response.json()
    assert state["created"]["oss_objects"] == 2
    assert state["live"]["oss_objects"] == 1


@pytest.mark.parametrize(
    ("header", "status", "expected", "content_range"),
    [
        ("bytes=2-5", 206, b"2345", "bytes 2-5/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
        ("bytes=20-30", 200, b"0123456789", None),  # OSS ignores an unsatisfiable range by default
    ],
)
async def test_range_reads(oss: Oss, header: str, status: int, expected: bytes, content_range: str | None) -> None:
    await oss.put("r.bin", b"0123456789")
    response, body = await oss.get("r.bin", Range=header)
    assert response.status == status
    assert body == expected
    assert response.headers.get("Content-Range") == content_range


async def test_unsatisfiable_range_with_standard_behaviour_is_416(oss: Oss) -> None:
    await oss.put("r.bin", b"0123456789")
    response, body = await oss.get("r.bin", Range="bytes=20-30", **{"x-oss-range-behavior": "standard"})
    assert response.status == 416
    assert error_code(body) == "InvalidRange"


async def test_preconditions(oss: Oss) -> None:
    put = await oss.put("p.txt", b"v1")
    etag = put.headers["ETag"]
    response, body = await oss.get("p.txt", **{"If-Match": etag})
    assert (response.status, body) == (200, b"v1")
    response, body = await oss.get("p.txt", **{"If-Match": '"0000"'})
    assert response.status == 412
    assert error_code(body) == "PreconditionFailed"
    response, _ = await oss.get("p.txt", **{"If-None-Match": etag})
    assert response.status == 304


async def test_large_object_streams_intact(oss: Oss) -> None:
    data = hashlib.sha256(b"seed").digest() * 200_000  # 6.4 MB
    assert (await oss.put("big.bin", data)).status == 200
    response, body = await oss.get("big.bin")
    assert response.status == 200
    assert body == data
    response, body = await oss.get("big.bin", Range="bytes=1000000-1000099")
    assert response.status == 206
    assert body == data[1_000_000:1_000_100]


async def test_content_md5_is_checked(oss: Oss) -> None:
    good = base64.b64encode(hashlib.md5(b"abc").digest()).decode()
    assert (await oss.put("m.txt", b"abc", **{"Content-MD5": good})).status == 200
    async with oss.session.put(oss.object_url("m2.txt"), data=b"abd", headers={"Content-MD5": good}) as response:
        assert response.status == 400
        assert error_code(await response.read()) == "InvalidDigest"
    response, _ = await oss.get("m2.txt")
    assert response.status == 404


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_odd_keys_are_stored_verbatim(oss: Oss, key: str) -> None:
    assert (await oss.put(key, key.encode())).status == 200
    response, body = await oss.get(key)
    assert response.status == 200
    assert body == key.encode()


async def test_missing_objects(oss: Oss) -> None:
    response, body = await oss.get("nope")
    assert response.status == 404
    assert error_code(body) == "NoSuchKey"
    async with oss.session.head(oss.object_url("nope")) as head:
        assert head.status == 404
        # A HEAD answer has no body: the SDK reads the error from x-oss-err.
        assert error_code(base64.b64decode(head.headers["x-oss-err"])) == "NoSuchKey"
    async with oss.session.delete(oss.object_url("nope")) as response:
        assert response.status == 204


async def test_delete_removes_the_object(oss: Oss) -> None:
    await oss.put("d.txt", b"x")
    async with oss.session.delete(oss.object_url("d.txt")) as response:
        assert response.status == 204
    response, _ = await oss.get("d.txt")
    assert response.status == 404


async def test_invalid_bucket_and_reserved_paths(oss: Oss, emulator_reset: Emulator) -> None:
    async with oss.session.put(f"{oss.url}/Bad_Bucket/k", data=b"x") as response:
        assert response.status == 400
        assert error_code(await response.read()) == "InvalidBucketName"
    # An unknown method on an API path must not create an object in a bucket called "api".
    headers = {"Authorization": f"Bearer {emulator_reset.api_key}"}
    async with oss.session.put(f"{oss.url}/api/v1/files/x", data=b"x", headers=headers) as response:
        assert response.status in (404, 405)
        assert "code" in await response.json(content_type=None)
    async with oss.session.get(f"{emulator_reset.url}/_emulator/state") as response:
        assert (await response.json())["live"]["oss_objects"] == 0


async def test_objects_survive_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    key = "datasets/中文 100%.jsonl"
    process, url = start_emulator(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            oss = Oss(session, url)
            await oss.put(key, b"kept", **{"x-oss-meta-k": "v"})
    finally:
        process.terminate()
        process.wait(timeout=10)
    process, url = start_emulator(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            response, body = await Oss(session, url).get(key)
            assert (response.status, body) == (200, b"kept")
            assert response.headers["x-oss-meta-k"] == "v"
    finally:
        process.terminate()
        process.wait(timeout=10)
