"""Native and OpenAI-compatible files, uploads from a path, bytes and an async iterator."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from client_helpers import SFT_LINE, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient
from bailian_flow.client.errors import NotFoundError


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_native_upload_from_path_bytes_and_iterator(client: BailianClient, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(SFT_LINE * 1000)
    from_path = await client.files.upload(path, description="from a path")
    from_bytes = await client.files.upload(SFT_LINE * 3, filename="bytes.jsonl")
    from_stream = await client.files.upload(_chunks(SFT_LINE * 500, 1000), filename="stream.jsonl")
    info = await client.files.get(from_path.file_id)
    assert info.name == "train.jsonl" and info.size == path.stat().st_size
    assert info.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert info.description == "from a path"
    assert (await client.files.get(from_bytes.file_id)).size == len(SFT_LINE) * 3
    streamed = await client.files.get(from_stream.file_id)
    assert streamed.name == "stream.jsonl" and streamed.size == len(SFT_LINE) * 500


async def test_native_list_paginates_get_and_delete(client: BailianClient) -> None:
    ids = {(await client.files.upload(SFT_LINE, filename=f"f{n}.jsonl")).file_id for n in range(5)}
    page = await client.files.list_page(1, 2)
    assert page.total == 5 and len(page.files) == 2
    assert {f.file_id async for f in client.files.list(page_size=2)} == ids
    victim = ids.pop()
    await client.files.delete(victim)
    with pytest.raises(NotFoundError):
        await client.files.get(victim)
    assert {f.file_id async for f in client.files.list()} == ids


async def test_compat_files_round_trip(client: BailianClient, tmp_path: Path) -> None:
    payload = b'{"custom_id":"1"}\n' * 100
    uploaded = await client.compat_files.upload(payload, purpose="batch", filename="in.jsonl")
    assert uploaded.id and uploaded.bytes == len(payload) and uploaded.purpose == "batch"
    assert (await client.compat_files.get(uploaded.id)).filename == "in.jsonl"
    content = b"".join([chunk async for chunk in client.compat_files.content(uploaded.id, chunk_size=64)])
    assert content == payload
    target = await client.compat_files.download(uploaded.id, tmp_path / "out.jsonl")
    assert target.read_bytes() == payload
    assert not (tmp_path / "out.jsonl.part").exists()
    deleted = await client.compat_files.delete(uploaded.id)
    assert deleted.deleted and deleted.id == uploaded.id
    with pytest.raises(NotFoundError):
        await client.compat_files.get(uploaded.id)


async def test_compat_list_follows_the_cursor(client: BailianClient) -> None:
    ids = set()
    for n in range(5):
        ids.add((await client.compat_files.upload(b"{}\n", purpose="batch", filename=f"b{n}.jsonl")).id)
    page = await client.compat_files.list_page(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert {f.id async for f in client.compat_files.list(limit=2)} >= ids
    assert {f.id async for f in client.compat_files.list(purpose="batch", limit=2)} == ids


async def test_missing_path_fails_before_any_request(client: BailianClient, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await client.files.upload(tmp_path / "absent.jsonl")
