"""Retries under injected faults: bounded, honouring Retry-After, and never repeating a create blindly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_helpers import LIMITERS, SFT_LINE, Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, RetryConfig
from bailian_flow.client.errors import (
    APIConnectionError,
    InternalServerError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
)

FINE_TUNES = "/api/v1/fine-tunes"


def fast_client(**retry: Any) -> BailianClient:
    config = RetryConfig(**{"initial_delay": 0.01, "max_delay": 0.05, **retry})
    return BailianClient(retry=config, rate_limits=dict.fromkeys(LIMITERS))


async def _job(client: BailianClient) -> str:
    file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
    return (await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])).job_id


async def test_503_with_retry_after_is_waited_for_then_succeeds(client: BailianClient, control: Control) -> None:
    job_id = await _job(client)
    await control.faults({"method": "GET", "path": f"{FINE_TUNES}/*", "status": 503, "retry_after": 1, "times": 1})
    started = time.monotonic()
    job = await client.fine_tunes.get(job_id)
    assert job.job_id == job_id
    assert time.monotonic() - started >= 1.0
    assert await control.fault_hits() == [1]


async def test_retries_are_bounded_in_attempts(bailian_env: Any, control: Control) -> None:
    await control.faults({"method": "GET", "path": FINE_TUNES, "status": 500, "times": 50})
    async with fast_client(max_retries=2) as client:
        with pytest.raises(InternalServerError) as failed:
            await client.fine_tunes.list_page()
    assert failed.value.status == 500
    assert await control.fault_hits() == [3]  # the first try and two retries


async def test_retries_are_bounded_in_time(bailian_env: Any, control: Control) -> None:
    await control.faults({"method": "GET", "path": FINE_TUNES, "status": 503, "times": 1000})
    started = time.monotonic()
    async with fast_client(max_retries=1000, initial_delay=0.1, max_delay=0.1, total_timeout=0.6) as client:
        with pytest.raises(InternalServerError):
            await client.fine_tunes.list_page()
    assert time.monotonic() - started < 2.0
    assert 2 <= (await control.fault_hits())[0] <= 10


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(bailian_env: Any, control: Control) -> None:
    await control.faults({"method": "GET", "path": FINE_TUNES, "status": 429, "retry_after": 30, "times": 5})
    started = time.monotonic()
    async with fast_client(max_retry_after=5) as client:
        with pytest.raises(RateLimitError):
            await client.fine_tunes.list_page()
    assert time.monotonic() - started < 5
    assert await control.fault_hits() == [1]


async def test_create_is_retried_after_429_which_proves_it_was_not_processed(
    bailian_env: Any, control: Control
) -> None:
    async with fast_client() as client:
        file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
        await control.faults({"method": "POST", "path": FINE_TUNES, "status": 429, "times": 2})
        job = await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
    assert job.job_id
    assert (await control.state())["created"]["fine_tunes"] == 1
    assert await control.fault_hits() == [2]


async def test_create_is_not_retried_after_500(bailian_env: Any, control: Control) -> None:
    async with fast_client() as client:
        file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
        await control.faults({"method": "POST", "path": FINE_TUNES, "status": 500, "times": 3})
        with pytest.raises(InternalServerError):
            await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
    assert await control.fault_hits() == [1]


async def test_create_dropped_after_processing_is_not_repeated(bailian_env: Any, control: Control) -> None:
    async with fast_client() as client:
        file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
        await control.faults({"method": "POST", "path": FINE_TUNES, "drop": "after", "times": 1})
        with pytest.raises(APIConnectionError) as dropped:
            await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
        assert dropped.value.maybe_processed is True
        # Exactly one job exists: the caller can look for it instead of creating another.
        assert (await control.state())["created"]["fine_tunes"] == 1
        assert len([job async for job in client.fine_tunes.list()]) == 1


async def test_get_dropped_before_answering_is_retried(bailian_env: Any, control: Control) -> None:
    async with fast_client() as client:
        job_id = await _job(client)
        await control.faults({"method": "GET", "path": f"{FINE_TUNES}/*", "drop": "before", "times": 2})
        assert (await client.fine_tunes.get(job_id)).job_id == job_id
    assert await control.fault_hits() == [2]


async def test_delete_whose_answer_was_lost_counts_as_done(bailian_env: Any, control: Control) -> None:
    async with fast_client() as client:
        file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
        await control.faults({"method": "DELETE", "path": "/api/v1/files/*", "drop": "after", "times": 1})
        await client.files.delete(file_id)  # the retry finds nothing: the first attempt did it
        with pytest.raises(NotFoundError):
            await client.files.delete(file_id)  # a plain delete of a missing file still says so


async def test_replayable_upload_is_retried_after_503(bailian_env: Any, control: Control) -> None:
    async with fast_client() as client:
        await control.faults({"method": "POST", "path": "/api/v1/files", "status": 503, "times": 1})
        uploaded = await client.files.upload(SFT_LINE * 1000, filename="t.jsonl")
        assert (await client.files.get(uploaded.file_id)).size == len(SFT_LINE) * 1000
    assert (await control.state())["created"]["files"] == 1


async def test_one_shot_stream_is_not_retried_once_consumed(bailian_env: Any, control: Control) -> None:
    pulled = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(64):
            pulled += 1
            yield b"x" * 65536

    # The answer comes late, so the client has sent (consumed) part of the stream before the 503 arrives.
    await control.faults({"method": "POST", "path": "/api/v1/files", "status": 503, "latency": 0.5, "times": 1})
    async with fast_client() as client:
        with pytest.raises(InternalServerError):
            await client.files.upload(stream(), filename="stream.jsonl")
    assert pulled > 0
    assert await control.fault_hits() == [1]
    assert (await control.state())["created"]["files"] == 0


async def test_one_shot_stream_opened_before_an_early_answer_is_not_sent_again_empty(
    bailian_env: Any, control: Control
) -> None:
    """The server answers 503 while the stream still waits for its first chunk (an OSS read in flight): the HTTP
    library closes the stream, so a retry would send an empty body and make an empty file."""
    pulled = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal pulled
        await asyncio.sleep(0.3)
        for _ in range(4):
            pulled += 1
            yield SFT_LINE

    await control.faults({"method": "POST", "path": "/api/v1/files", "status": 503, "times": 1})
    async with fast_client() as client:
        with pytest.raises(InternalServerError):
            await client.files.upload(stream(), filename="stream.jsonl")
    assert await control.fault_hits() == [1]
    assert (await control.state())["created"]["files"] == 0


# --- a full quota is a 429 too, but no wait frees it: never retried; rate throttling keeps its backoff ----------


async def test_a_full_quota_is_not_retried(bailian_env: Any, control: Control) -> None:
    await control._call("POST", "/config", {"quotas": {"fine_tune_jobs": 1}})
    async with fast_client(max_retries=5) as client:
        file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
        await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
        # Counted by the emulator's fault rule that matches and lets the request through (a latency of 0).
        await control.faults({"method": "POST", "path": FINE_TUNES, "latency": 0.0})
        started = time.monotonic()
        with pytest.raises(QuotaExceededError) as full:
            await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
    assert time.monotonic() - started < 1.0
    assert await control.fault_hits() == [1], "one request, no retry"
    assert full.value.quota == "fine-tune-jobs" and "Only 1 fine-tune job" in full.value.message


async def test_the_file_quota_is_not_retried_either(bailian_env: Any, control: Control) -> None:
    await control._call("POST", "/config", {"quotas": {"files": 1}})
    async with fast_client(max_retries=5) as client:
        await client.files.upload(SFT_LINE, filename="a.jsonl")
        with pytest.raises(QuotaExceededError) as full:
            await client.files.upload(SFT_LINE, filename="b.jsonl")
    # The documented answer is a 200 with `BadRequest.TooMany` under failed_uploads (service-contract.md#C16);
    # the older emulator answers 429 `Throttling.AllocationQuota`. Either is the same wait in the files line.
    assert full.value.quota == "files"
    assert full.value.code in {"BadRequest.TooMany", "Throttling.AllocationQuota"}
    assert (await control.state())["live"]["files"] == 1


async def test_rate_throttling_keeps_its_backoff(bailian_env: Any, control: Control) -> None:
    message = "Requests rate limit exceeded, please try again later."
    rule = {"method": "GET", "path": FINE_TUNES, "status": 429, "code": "Throttling.RateQuota", "message": message}
    await control.faults({**rule, "times": 2})
    async with fast_client(initial_delay=0.05, max_delay=0.05) as client:
        page = await client.fine_tunes.list_page()
    assert page.total == 0
    assert await control.fault_hits() == [2], "both throttled answers were retried"
