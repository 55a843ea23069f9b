"""Fine-tune jobs end to end against the emulator (time scale 100: a job finishes in under a second)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from client_helpers import SFT_LINE, Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, FineTuneStatus
from bailian_flow.client.errors import BadRequestError, NotFoundError, QuotaExceededError, RateLimitError
from bailian_flow.client.resources.fine_tunes import _sse_frames


async def _file(client: BailianClient) -> str:
    return (await client.files.upload(SFT_LINE * 4, filename="train.jsonl")).file_id


async def _wait_terminal(client: BailianClient, job_id: str) -> str:
    for _ in range(100):
        job = await client.fine_tunes.get(job_id)
        if job.is_terminal:
            return job.status
        await asyncio.sleep(0.1)
    raise AssertionError("job never finished")


async def test_create_with_file_ids_runs_to_success(client: BailianClient) -> None:
    file_id = await _file(client)
    job = await client.fine_tunes.create(
        "qwen3-14b",
        training_file_ids=[file_id],
        hyper_parameters={"n_epochs": 1, "learning_rate": "1.6e-5"},
        job_name="run-a",
    )
    assert job.job_id.startswith("ft-")
    assert job.status == FineTuneStatus.PENDING
    assert job.training_file_ids == [file_id]
    assert await _wait_terminal(client, job.job_id) == FineTuneStatus.SUCCEEDED
    done = await client.fine_tunes.get(job.job_id)
    assert done.usage and done.usage > 0
    assert done.hyper_parameters is not None
    assert str(done.hyper_parameters.learning_rate) in {"1.6e-5", "1.6e-05"}


async def test_create_with_training_datasets_form(client: BailianClient) -> None:
    file_id = await _file(client)
    job = await client.fine_tunes.create(
        "qwen3-14b",
        training_datasets=[{"data_source_type": "file_id", "file_id": file_id}],
        hyper_parameters={"learning_rate": 2e-5},
    )
    fetched = await client.fine_tunes.get(job.job_id)
    assert fetched.job_id == job.job_id
    assert file_id in fetched.training_file_ids or any(ds.file_id == file_id for ds in fetched.training_datasets or [])


async def test_create_without_training_data_is_refused_locally(client: BailianClient) -> None:
    with pytest.raises(ValueError, match="training"):
        await client.fine_tunes.create("qwen3-14b")


async def test_list_paginates_over_more_than_a_page(client: BailianClient) -> None:
    file_id = await _file(client)
    created = {(await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])).job_id for _ in range(7)}
    listed = [job.job_id async for job in client.fine_tunes.list(page_size=3)]
    assert sorted(listed) == sorted(created)
    first = await client.fine_tunes.list_page(1, 3)
    assert first.total == 7 and len(first.jobs) == 3


async def test_cancel_then_delete(client: BailianClient) -> None:
    job = await client.fine_tunes.create("qwen3-14b", training_file_ids=[await _file(client)])
    with pytest.raises(BadRequestError) as running:
        await client.fine_tunes.delete(job.job_id)
    assert running.value.code == "UnsupportedOperation"
    await client.fine_tunes.cancel(job.job_id)
    assert await _wait_terminal(client, job.job_id) == FineTuneStatus.CANCELED
    await client.fine_tunes.delete(job.job_id)
    with pytest.raises(NotFoundError) as gone:
        await client.fine_tunes.get(job.job_id)
    assert gone.value.status == 404 and gone.value.request_id


async def test_logs_checkpoints_export_and_events(client: BailianClient) -> None:
    job = await client.fine_tunes.create("qwen3-14b", training_file_ids=[await _file(client)])
    assert await _wait_terminal(client, job.job_id) == FineTuneStatus.SUCCEEDED
    logs = await client.fine_tunes.logs(job.job_id, offset=0, line=1000)
    assert logs.total >= len(logs.logs) > 0
    assert any("##FT_COMPLETE##" in line for line in logs.logs)
    checkpoints = await client.fine_tunes.checkpoints(job.job_id)
    assert checkpoints and checkpoints[0].step is not None
    steps = [cp.step or 0 for cp in checkpoints]
    assert steps == sorted(steps, reverse=True)  # newest first
    assert checkpoints[0].checkpoint
    assert await client.fine_tunes.export(job.job_id, checkpoints[0].checkpoint, "exported-model") is True
    events = [event async for event in client.fine_tunes.events(job.job_id)]
    assert events and all(event.data for event in events)
    assert any("##FT_COMPLETE##" in event.data for event in events)


async def test_running_quota_gives_quota_exceeded_error(client: BailianClient) -> None:
    file_id = await _file(client)
    for _ in range(20):
        await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
    with pytest.raises(RateLimitError) as quota:
        await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
    assert quota.value.status == 429 and quota.value.code == "Throttling"
    assert isinstance(quota.value, QuotaExceededError) and quota.value.quota == "fine-tune-jobs"


async def test_scripted_failure_is_reported(client: BailianClient, control: Control) -> None:
    await control.script("fine_tune", "FAILED")
    job = await client.fine_tunes.create("qwen3-14b", training_file_ids=[await _file(client)])
    assert await _wait_terminal(client, job.job_id) == FineTuneStatus.FAILED


async def test_sse_frames_join_data_lines_skip_comments_and_keep_an_unterminated_last_frame() -> None:
    async def lines() -> AsyncIterator[bytes]:
        for line in [": heartbeat", "id: 1", "data: first", "data:  second", "", "", "event: error", "data: {}"]:
            yield line.encode() + b"\r\n"

    frames = [frame async for frame in _sse_frames(lines())]
    assert frames == [({"id": "1"}, "first\n second"), ({"event": "error"}, "{}")]
