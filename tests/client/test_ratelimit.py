"""The client-side limiter keeps a family under its documented QPS, across every task of one client."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from client_helpers import SFT_LINE

from bailian_flow.client import BailianClient
from bailian_flow.client._ratelimit import TokenBucket


async def test_concurrent_uploads_stay_under_three_per_second(bailian_env: Any) -> None:
    uploads = 7
    async with BailianClient() as client:  # default limits: file uploads 3 QPS
        started = time.monotonic()
        results = await asyncio.gather(*(client.files.upload(SFT_LINE, filename=f"f{n}.jsonl") for n in range(uploads)))
        elapsed = time.monotonic() - started
        assert len({r.file_id for r in results}) == uploads
        # Queries have their own, faster bucket: a listing right after is not held back by the uploads.
        listed_at = time.monotonic()
        assert (await client.files.list_page()).total == uploads
        assert time.monotonic() - listed_at < 0.3
    assert elapsed >= (uploads - 1) / 3 - 0.05


async def test_bucket_spaces_acquisitions_at_its_rate() -> None:
    bucket = TokenBucket(rate=20.0)
    stamps: list[float] = []

    async def take() -> None:
        await bucket.acquire()
        stamps.append(time.monotonic())

    await asyncio.gather(*(take() for _ in range(11)))
    assert stamps[-1] - stamps[0] >= 10 / 20 - 0.02
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 1 / 20 - 0.01  # never two in one slot, whatever the scheduling


async def test_bucket_saves_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=3.0)
    started = time.monotonic()
    for _ in range(3):
        await bucket.acquire()
    assert time.monotonic() - started < 0.1
