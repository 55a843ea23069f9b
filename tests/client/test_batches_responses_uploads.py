"""Batches (batch host), stored responses and temporary oss:// uploads."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from client_helpers import Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, BatchStatus
from bailian_flow.client.errors import NotFoundError


def _batch_input(lines: int) -> bytes:
    rows = [
        {
            "custom_id": str(n),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"q{n}"}]},
        }
        for n in range(lines)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


async def test_batch_lifecycle_and_output(client: BailianClient, control: Control) -> None:
    file = await client.compat_files.upload(_batch_input(3), purpose="batch", filename="in.jsonl")
    batch = await client.batches.create(file.id, "/v1/chat/completions", metadata={"ds_name": "t"})
    assert batch.status == BatchStatus.VALIDATING and batch.input_file_id == file.id
    await control.advance(3600)
    done = await client.batches.get(batch.id)
    assert done.status == BatchStatus.COMPLETED and done.is_terminal
    assert done.output_file_id
    output = b"".join([c async for c in client.compat_files.content(done.output_file_id)])
    assert len(output.splitlines()) == 3
    assert [b.id async for b in client.batches.list()] == [batch.id]


async def test_batch_cancel_and_cursor_listing(client: BailianClient) -> None:
    file = await client.compat_files.upload(_batch_input(1), purpose="batch", filename="in.jsonl")
    # Two: the service runs at most two batches at once.
    ids = [(await client.batches.create(file.id, "/v1/chat/completions")).id for _ in range(2)]
    cancelled = await client.batches.cancel(ids[0])
    assert cancelled.status in {BatchStatus.CANCELLING, BatchStatus.CANCELLED}
    assert sorted([b.id async for b in client.batches.list(limit=1)]) == sorted(ids)


async def test_stored_response_items_and_delete(client: BailianClient) -> None:
    messages = [{"role": "user", "content": f"message {n}"} for n in range(5)]
    created = await client.responses.create("qwen-plus", messages)
    assert created.id.startswith("resp")
    assert (await client.responses.get(created.id)).id == created.id
    newest_first = [item.id async for item in client.responses.input_items(created.id, limit=2)]
    oldest_first = [item.id async for item in client.responses.input_items(created.id, order="asc", limit=2)]
    assert len(newest_first) == 5 and newest_first == oldest_first[::-1]
    deleted = await client.responses.delete(created.id)
    assert deleted.deleted
    with pytest.raises(NotFoundError) as missing:
        await client.responses.get(created.id)
    assert "not found" in missing.value.message


async def test_temporary_upload_gives_an_oss_url(client: BailianClient, bailian_env: Any) -> None:
    url = await client.uploads.upload_temporary("qwen-vl-plus", b"hello image", filename="cat.png")
    assert url.startswith("oss://dashscope-instant/") and url.endswith("/cat.png")
    # The object really landed in the emulator's OSS subset: bucket dashscope-instant, key = the whole path.
    object_url = f"{bailian_env.url}/dashscope-instant/{url.removeprefix('oss://')}"
    async with aiohttp.ClientSession() as session, session.get(object_url) as got:
        assert got.status == 200
        assert await got.read() == b"hello image"
