"""How an upload body leaves the client: a path with `sendfile` on plain TCP, other sources chunk by chunk.

Which way was taken shows in the progress callback: `sendfile` reports once per SENDFILE_SEGMENT, the chunked
path once per CHUNK_SIZE. Either way the emulator must store exactly the bytes of the source.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from client_helpers import LIMITERS, Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, RetryConfig
from bailian_flow.client._streams import CHUNK_SIZE, SENDFILE_SEGMENT


def _content(size: int) -> bytes:
    """Varied bytes (so a shifted or repeated block changes the md5), with boundary-like runs in them."""
    block = os.urandom(4096) + b"\r\n--" + b"-" * 30 + b"\r\n\r\n"
    return (block * (size // len(block) + 1))[:size]


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, sent: int, total: int | None) -> None:
        self.calls.append((sent, total))


async def test_path_goes_out_with_sendfile_and_arrives_intact(client: BailianClient, tmp_path: Path) -> None:
    data = _content(2 * SENDFILE_SEGMENT + 12345)
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    progress = Progress()
    uploaded = await client.files.upload(path, progress=progress)
    info = await client.files.get(uploaded.file_id)
    assert info.size == len(data)
    assert info.md5 == hashlib.md5(data).hexdigest()
    assert [sent for sent, _ in progress.calls] == [SENDFILE_SEGMENT, 2 * SENDFILE_SEGMENT, len(data)]
    assert {total for _, total in progress.calls} == {len(data)}


async def test_bytes_and_streams_go_chunk_by_chunk(client: BailianClient) -> None:
    data = _content(3 * CHUNK_SIZE + 7)
    from_bytes = Progress()
    uploaded = await client.files.upload(data, filename="bytes.jsonl", progress=from_bytes)
    assert (await client.files.get(uploaded.file_id)).md5 == hashlib.md5(data).hexdigest()
    assert len(from_bytes.calls) == math.ceil(len(data) / CHUNK_SIZE)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 100_003):
            yield data[start : start + 100_003]

    from_stream = Progress()
    uploaded = await client.files.upload(stream(), filename="s.jsonl", size=len(data), progress=from_stream)
    info = await client.files.get(uploaded.file_id)
    assert info.size == len(data) and info.md5 == hashlib.md5(data).hexdigest()
    assert from_stream.calls[-1] == (len(data), len(data))


async def test_a_path_is_sent_again_in_full_after_a_503(bailian_env: Any, control: Control, tmp_path: Path) -> None:
    data = _content(SENDFILE_SEGMENT + 99)
    path = tmp_path / "retry.jsonl"
    path.write_bytes(data)
    retry = RetryConfig(initial_delay=0.01, max_delay=0.05)
    async with BailianClient(retry=retry, rate_limits=dict.fromkeys(LIMITERS)) as client:
        await control.faults({"method": "POST", "path": "/api/v1/files", "status": 503, "times": 1})
        uploaded = await client.files.upload(path)
        info = await client.files.get(uploaded.file_id)
    assert await control.fault_hits() == [1]
    assert info.size == len(data) and info.md5 == hashlib.md5(data).hexdigest()
    assert (await control.state())["created"]["files"] == 1


async def test_empty_file_is_uploaded(client: BailianClient, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    uploaded = await client.files.upload(path)
    info = await client.files.get(uploaded.file_id)
    assert info.size == 0 and info.md5 == hashlib.md5(b"").hexdigest()
