"""ListObjects v2 (and v1) on the emulator's OSS subset over raw HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
from emulator_support import Emulator
from yarl import URL

BUCKET = "list-bucket"
KEYS = [
    "a.txt",
    "datasets/2024/x.jsonl",
    "datasets/2024/y.jsonl",
    "datasets/2025/z.jsonl",
    "datasets/top.jsonl",
    "datasets/with space.jsonl",
    "datasets/中文.jsonl",
    "runs/r1/00000001-start.json",
    "z%25.txt",
]


class Lister:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def put(self, key: str) -> None:
        async with self.session.put(URL(f"{self.url}/{BUCKET}/{quote(key)}", encoded=True), data=b"x") as response:
            assert response.status == 200

    async def list(self, **params: Any) -> ET.Element:
        async with self.session.get(f"{self.url}/{BUCKET}/", params={"list-type": "2", **params}) as response:
            body = await response.read()
            assert response.status == 200, body
            return ET.fromstring(body)


@pytest.fixture
async def lister(emulator_reset: Emulator) -> AsyncIterator[Lister]:
    async with aiohttp.ClientSession() as session:
        lister = Lister(session, emulator_reset.oss_endpoint)
        for key in reversed(KEYS):  # insertion order must not leak into the listing order
            await lister.put(key)
        yield lister


def keys_of(result: ET.Element, encoded: bool = False) -> list[str]:
    keys = [item.findtext("Key") or "" for item in result.findall("Contents")]
    return [unquote(key) for key in keys] if encoded else keys


def prefixes_of(result: ET.Element) -> list[str]:
    return [item.findtext("Prefix") or "" for item in result.findall("CommonPrefixes")]


async def test_full_listing_is_sorted_by_key_bytes(lister: Lister) -> None:
    result = await lister.list()
    assert keys_of(result) == sorted(KEYS, key=lambda key: key.encode())
    assert result.findtext("IsTruncated") == "false"
    assert result.findtext("KeyCount") == str(len(KEYS))
    assert result.findtext("Name") == BUCKET
    first = result.find("Contents")
    assert first is not None
    assert first.findtext("ETag", "").startswith('"')
    assert first.findtext("Size") == "1"
    assert first.findtext("StorageClass") == "Standard"
    assert first.findtext("LastModified", "").endswith("Z")


async def test_keys_are_url_encoded_only_on_request(lister: Lister) -> None:
    plain = await lister.list(prefix="datasets/w")
    assert keys_of(plain) == ["datasets/with space.jsonl"]
    encoded = await lister.list(prefix="datasets/w", **{"encoding-type": "url"})
    assert encoded.findtext("EncodingType") == "url"
    assert [item.findtext("Key") for item in encoded.findall("Contents")] == ["datasets/with%20space.jsonl"]
    everything = await lister.list(**{"encoding-type": "url"})
    assert keys_of(everything, encoded=True) == sorted(KEYS)


async def test_prefix_and_delimiter_fold_common_prefixes(lister: Lister) -> None:
    result = await lister.list(prefix="datasets/", delimiter="/")
    assert prefixes_of(result) == ["datasets/2024/", "datasets/2025/"]
    assert keys_of(result) == ["datasets/top.jsonl", "datasets/with space.jsonl", "datasets/中文.jsonl"]
    assert result.findtext("KeyCount") == "5"
    top = await lister.list(delimiter="/")
    assert prefixes_of(top) == ["datasets/", "runs/"]
    assert keys_of(top) == ["a.txt", "z%25.txt"]


async def test_start_after(lister: Lister) -> None:
    result = await lister.list(prefix="datasets/", **{"start-after": "datasets/2025/z.jsonl"})
    assert keys_of(result) == ["datasets/top.jsonl", "datasets/with space.jsonl", "datasets/中文.jsonl"]
    assert result.findtext("StartAfter") == "datasets/2025/z.jsonl"


@pytest.mark.parametrize("delimiter", ["", "/"])
async def test_continuation_pages_cover_everything_once(lister: Lister, delimiter: str) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"max-keys": 2, "delimiter": delimiter}
        if token:
            params["continuation-token"] = token
        result = await lister.list(**params)
        pages += 1
        entries = keys_of(result) + prefixes_of(result)
        assert len(entries) <= 2
        assert result.findtext("KeyCount") == str(len(entries))
        seen += entries
        if result.findtext("IsTruncated") == "false":
            assert result.find("NextContinuationToken") is None
            break
        token = result.findtext("NextContinuationToken")
        assert token
    expected = KEYS if not delimiter else ["a.txt", "datasets/", "runs/", "z%25.txt"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert pages == (len(expected) + 1) // 2


async def test_v1_marker_listing(lister: Lister) -> None:
    async with lister.session.get(f"{lister.url}/{BUCKET}/", params={"max-keys": "3", "delimiter": "/"}) as response:
        result = ET.fromstring(await response.read())
    assert keys_of(result) + prefixes_of(result) == ["a.txt", "datasets/", "runs/"]
    assert result.findtext("IsTruncated") == "true"
    marker = result.findtext("NextMarker")
    async with lister.session.get(
        f"{lister.url}/{BUCKET}/", params={"max-keys": "3", "delimiter": "/", "marker": marker or ""}
    ) as response:
        rest = ET.fromstring(await response.read())
    assert keys_of(rest) + prefixes_of(rest) == ["z%25.txt"]


async def test_empty_or_unknown_bucket_lists_nothing(emulator_reset: Emulator) -> None:
    url = f"{emulator_reset.url}/never-written"
    async with aiohttp.ClientSession() as session, session.get(url, params={"list-type": "2"}) as response:
        assert response.status == 200
        result = ET.fromstring(await response.read())
    assert keys_of(result) == []
    assert result.findtext("KeyCount") == "0"


async def test_bad_parameters(lister: Lister) -> None:
    for params in ({"max-keys": "1001"}, {"max-keys": "x"}, {"continuation-token": "!!!"}, {"encoding-type": "b64"}):
        async with lister.session.get(f"{lister.url}/{BUCKET}/", params={"list-type": "2", **params}) as response:
            assert response.status == 400, params
            assert ET.fromstring(await response.read()).findtext("Code") == "InvalidArgument"


async def test_dot_segments_and_double_slashes_survive(lister: Lister) -> None:
    await lister.put("odd//double/../dots")
    result = await lister.list(prefix="odd")
    assert keys_of(result) == ["odd//double/../dots"]
