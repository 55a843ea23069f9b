"""Both backends through one suite: FileStore on a temp dir, OssStore against the emulator's OSS subset."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_support import BACKENDS, keys, open_backend

from bailian_flow.store import (
    FileStore,
    InvalidKeyError,
    ObjectChangedError,
    ObjectNotFoundError,
    ObjectStore,
    OssCredentials,
    OssStore,
    StoreError,
)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    async with open_backend(request, tmp_path) as backend:
        yield backend


async def test_put_get_head_delete_round_trip(store: ObjectStore) -> None:
    data = b'{"messages": []}\n'
    assert await store.put(
        "datasets/a/train.jsonl", data, metadata={"Flow-Model": "qwen3-8b"}, content_type="application/jsonl"
    )
    assert await store.get("datasets/a/train.jsonl") == data

    info = await store.head("datasets/a/train.jsonl")
    assert info is not None
    assert info.key == "datasets/a/train.jsonl"
    assert info.size == len(data)
    assert info.etag == hashlib.md5(data).hexdigest().upper()
    assert info.metadata == {"flow-model": "qwen3-8b"}
    assert info.content_type == "application/jsonl"
    assert info.last_modified.tzinfo is not None

    await store.delete("datasets/a/train.jsonl")
    assert await store.get("datasets/a/train.jsonl") is None
    assert await store.head("datasets/a/train.jsonl") is None
    await store.delete("datasets/a/train.jsonl")  # deleting twice is not an error


async def test_missing_key_reads_as_none(store: ObjectStore) -> None:
    assert await store.get("nothing/here.json") is None
    assert await store.head("nothing/here.json") is None
    with pytest.raises(ObjectNotFoundError):
        async for _ in store.stream("nothing/here.json"):
            pass


async def test_forbid_overwrite_keeps_the_first_write(store: ObjectStore) -> None:
    assert await store.put("runs/r1/00000000.json", b"first", forbid_overwrite=True)
    assert not await store.put("runs/r1/00000000.json", b"second", forbid_overwrite=True)
    assert await store.get("runs/r1/00000000.json") == b"first"
    # A plain put still overwrites, and the head reflects the new version.
    assert await store.put("runs/r1/00000000.json", b"third!")
    assert await store.get("runs/r1/00000000.json") == b"third!"
    info = await store.head("runs/r1/00000000.json")
    assert info is not None and info.size == 6 and info.etag == hashlib.md5(b"third!").hexdigest().upper()


async def test_concurrent_create_only_writes_have_exactly_one_winner(store: ObjectStore) -> None:
    writers = 20
    results = await asyncio.gather(
        *(store.put("runs/r2/00000003.json", b"writer-%d" % n, forbid_overwrite=True) for n in range(writers))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.get("runs/r2/00000003.json") == b"writer-%d" % winner


async def test_stream_multi_megabyte_object_in_small_chunks(store: ObjectStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    assert await store.put("datasets/big.bin", data)
    chunk_size = 256 * 1024
    chunks = [chunk async for chunk in store.stream("datasets/big.bin", chunk_size=chunk_size)]
    assert all(len(chunk) <= chunk_size for chunk in chunks)
    assert len(chunks) >= len(data) // chunk_size
    assert b"".join(chunks) == data


async def test_overwrite_during_stream_never_splices_versions(store: ObjectStore) -> None:
    original, replacement = b"a" * 300_000, b"b" * 300_000
    assert await store.put("datasets/moving.jsonl", original)
    chunks: list[bytes] = []
    try:
        async for chunk in store.stream("datasets/moving.jsonl", chunk_size=64 * 1024):
            chunks.append(chunk)
            if len(chunks) == 1:
                assert await store.put("datasets/moving.jsonl", replacement)
    except ObjectChangedError:
        # OSS: the next ranged read is pinned to the first ETag and fails loudly.
        assert isinstance(store, OssStore)
    else:
        # Filesystem: the open handle keeps reading the version it opened.
        assert b"".join(chunks) == original
    assert await store.get("datasets/moving.jsonl") == replacement


async def test_stream_pinned_to_a_version_refuses_any_other(store: ObjectStore) -> None:
    assert await store.put("datasets/pinned.jsonl", b"first version\n")
    first = await store.head("datasets/pinned.jsonl")
    assert first is not None
    # Quoted (as listings spell it) or bare (as events do), the pin is the same.
    for spelling in (first.etag, f'"{first.etag}"', first.etag.lower()):
        chunks = [chunk async for chunk in store.stream("datasets/pinned.jsonl", if_match=spelling)]
        assert b"".join(chunks) == b"first version\n"
    assert await store.put("datasets/pinned.jsonl", b"second version\n")
    with pytest.raises(ObjectChangedError) as raised:
        async for _ in store.stream("datasets/pinned.jsonl", if_match=first.etag):
            pass
    assert raised.value.status == 412


async def test_stream_of_empty_object_yields_nothing(store: ObjectStore) -> None:
    assert await store.put("empty.jsonl", b"")
    assert [chunk async for chunk in store.stream("empty.jsonl")] == []


async def test_list_is_sorted_prefixed_and_resumable(store: ObjectStore) -> None:
    names = [
        "runs/r1/00000002.json",
        "runs/r1/00000000.json",
        "runs/r1/00000001-file-ready.json",
        "runs/r1/00000001.json",
        "runs/r1.txt",
        "runs/r10/00000000.json",
        "runs/r2/00000000.json",
        "active/r1",
        "datasets/数据/训练 集.jsonl",
    ]
    for name in names:
        assert await store.put(name, name.encode())

    everything = await keys(store, "")
    assert everything == sorted(names, key=lambda k: k.encode())
    assert await keys(store, "runs/r1/") == [
        "runs/r1/00000000.json",
        "runs/r1/00000001-file-ready.json",
        "runs/r1/00000001.json",
        "runs/r1/00000002.json",
    ]
    # A prefix that ends inside a path segment matches files and directories alike.
    assert await keys(store, "runs/r1") == [
        "runs/r1.txt",
        "runs/r1/00000000.json",
        "runs/r1/00000001-file-ready.json",
        "runs/r1/00000001.json",
        "runs/r1/00000002.json",
        "runs/r10/00000000.json",
    ]
    assert await keys(store, "runs/r1/", start_after="runs/r1/00000001-file-ready.json") == [
        "runs/r1/00000001.json",
        "runs/r1/00000002.json",
    ]
    after_r1 = await keys(store, "runs/", start_after="runs/r1/~")
    assert after_r1 == ["runs/r10/00000000.json", "runs/r2/00000000.json"]
    assert await keys(store, "runs/r1/", start_after="runs/r1/00000002.json") == []
    assert await keys(store, "datasets/数据/") == ["datasets/数据/训练 集.jsonl"]
    assert await keys(store, "nope/") == []

    sizes = {info.key: info.size async for info in store.list("runs/r1/")}
    assert sizes["runs/r1/00000000.json"] == len(b"runs/r1/00000000.json")


async def test_list_pages_through_more_than_one_page(store: ObjectStore) -> None:
    # The OSS backend asks for 1000 keys a page by default; a small page size proves the paginator is used.
    if isinstance(store, OssStore):
        store._list_page_size = 7
    await asyncio.gather(*(store.put(f"active/r{n:03d}", b"") for n in range(30)))
    assert await keys(store, "active/") == [f"active/r{n:03d}" for n in range(30)]
    tail = await keys(store, "active/", start_after="active/r024")
    assert tail == [f"active/r{n:03d}" for n in range(25, 30)]


def test_file_store_rejects_keys_that_would_escape_or_collide(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for bad in ["", "/abs", "a/../b", "a//b", "./a", ".flow-meta/x", "a\x00b"]:
        with pytest.raises(InvalidKeyError):
            asyncio.run(store.put(bad, b"x"))


async def test_file_store_key_cannot_be_object_and_prefix(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert await store.put("a", b"x")
    with pytest.raises(StoreError):
        await store.put("a/b", b"y")


async def test_file_store_lists_hand_dropped_files_with_stable_etag(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "train.jsonl").write_bytes(b"{}\n")
    first = await store.head("datasets/train.jsonl")
    second = await store.head("datasets/train.jsonl")
    assert first is not None and second is not None
    assert first.etag == second.etag and first.size == 3 and first.metadata == {}
    assert await keys(store, "") == ["datasets/train.jsonl"]  # the hidden sidecar/temp trees are not listed


async def test_file_store_is_create_only_across_processes_of_its_own(tmp_path: Path) -> None:
    # Two store instances on one root stand for two FC instances sharing a bucket.
    one, two = FileStore(tmp_path), FileStore(tmp_path)
    results = await asyncio.gather(
        *(s.put("k.json", bytes([n]), forbid_overwrite=True) for n, s in enumerate([one, two] * 5))
    )
    assert results.count(True) == 1


def test_oss_credentials_never_show_secrets() -> None:
    creds = OssCredentials("LTAI-id", "super-secret-value", "sts-token-value")
    text = repr(creds) + str(creds)
    assert "LTAI-id" in text
    assert "super-secret-value" not in text and "sts-token-value" not in text
    store = OssStore("b", region="cn-hangzhou", credentials=creds)
    assert "super-secret-value" not in repr(store)


def test_oss_credentials_from_fc_context_snake_or_camel() -> None:
    class Snake:
        access_key_id = "id1"
        access_key_secret = "s1"
        security_token = "t1"

    class Camel:
        accessKeyId = "id2"
        accessKeySecret = "s2"
        securityToken = "t2"

    class Ctx:
        def __init__(self, credentials: object) -> None:
            self.credentials = credentials

    assert OssCredentials.from_context(Ctx(Snake())) == OssCredentials("id1", "s1", "t1")
    assert OssCredentials.from_context(Ctx(Camel())) == OssCredentials("id2", "s2", "t2")
    mapping = Ctx({"accessKeyId": "id3", "accessKeySecret": "s3"})
    assert OssCredentials.from_context(mapping) == OssCredentials("id3", "s3", None)
    assert OssCredentials.from_context(object()) is None
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"}
    assert OssCredentials.from_env(env) == OssCredentials("a", "b", None)
    assert OssCredentials.from_env({}) is None
