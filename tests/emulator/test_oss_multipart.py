"""Multipart uploads over raw HTTP: the CompleteMultipartUpload event, create-only completion, complete-all."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import aiohttp
import pytest
from emulator_support import Emulator

BUCKET = "mp-bucket"


@pytest.fixture
async def session(emulator_reset: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def initiate(session: aiohttp.ClientSession, url: str, key: str, **headers: str) -> str:
    async with session.post(f"{url}/{BUCKET}/{key}?uploads", headers=headers) as response:
        assert response.status == 200
        return ET.fromstring(await response.read()).findtext("UploadId") or ""


async def upload_part(
    session: aiohttp.ClientSession, url: str, key: str, upload_id: str, number: int, data: bytes
) -> str:
    params = {"partNumber": str(number), "uploadId": upload_id}
    async with session.put(f"{url}/{BUCKET}/{key}", params=params, data=data) as response:
        assert response.status == 200
        return response.headers["ETag"]


async def test_complete_all_emits_complete_multipart_upload(
    session: aiohttp.ClientSession, emulator_reset: Emulator
) -> None:
    url = emulator_reset.url
    upload_id = await initiate(session, url, "datasets/big.jsonl")
    await upload_part(session, url, "datasets/big.jsonl", upload_id, 2, b"second\n")
    await upload_part(session, url, "datasets/big.jsonl", upload_id, 1, b"first\n")
    async with session.post(
        f"{url}/{BUCKET}/datasets/big.jsonl", params={"uploadId": upload_id}, headers={"x-oss-complete-all": "yes"}
    ) as response:
        assert response.status == 200
        result = ET.fromstring(await response.read())
    combined = hashlib.md5(hashlib.md5(b"first\n").digest() + hashlib.md5(b"second\n").digest()).hexdigest().upper()
    assert result.findtext("ETag") == f'"{combined}-2"'
    async with session.get(f"{url}/{BUCKET}/datasets/big.jsonl") as response:
        assert await response.read() == b"first\nsecond\n"
    async with session.get(f"{url}/_emulator/oss/events") as response:
        events = (await response.json())["events"]
    [event] = events
    assert event["record"]["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert event["record"]["oss"]["object"]["size"] == len(b"first\nsecond\n")
    assert event["record"]["oss"]["object"]["eTag"] == f"{combined}-2"


async def test_forbid_overwrite_on_complete(session: aiohttp.ClientSession, emulator_reset: Emulator) -> None:
    url = emulator_reset.url
    async with session.put(f"{url}/{BUCKET}/taken", data=b"old") as response:
        assert response.status == 200
    upload_id = await initiate(session, url, "taken", **{"x-oss-forbid-overwrite": "true"})
    etag = await upload_part(session, url, "taken", upload_id, 1, b"new")
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    )
    async with session.post(f"{url}/{BUCKET}/taken", params={"uploadId": upload_id}, data=body) as response:
        assert response.status == 409
        assert ET.fromstring(await response.read()).findtext("Code") == "FileAlreadyExists"
    async with session.get(f"{url}/{BUCKET}/taken") as response:
        assert await response.read() == b"old"


async def test_unknown_upload_and_bad_part_number(session: aiohttp.ClientSession, emulator_reset: Emulator) -> None:
    url = emulator_reset.url
    async with session.put(f"{url}/{BUCKET}/k", params={"partNumber": "1", "uploadId": "nope"}, data=b"x") as response:
        assert response.status == 404
        assert ET.fromstring(await response.read()).findtext("Code") == "NoSuchUpload"
    upload_id = await initiate(session, url, "k")
    async with session.put(
        f"{url}/{BUCKET}/k", params={"partNumber": "0", "uploadId": upload_id}, data=b"x"
    ) as response:
        assert response.status == 400
    async with session.post(f"{url}/{BUCKET}/k", params={"uploadId": upload_id}, data=b"<oops") as response:
        assert response.status == 400
        assert ET.fromstring(await response.read()).findtext("Code") == "MalformedXML"
