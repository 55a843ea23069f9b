"""The client reads the service as its pages document it (issue #14, docs/service-contract.md).

Where the emulator answers the documented way the test goes through it over loopback; where it does not yet
(the native file quota still answers 429 there), the parsing is tested on the sample JSON copied from the page:
a real peer's answer, not a mock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_helpers import LIMITERS, SFT_LINE, Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, RetryConfig
from bailian_flow.client import errors as e
from bailian_flow.client._retry import is_retryable
from bailian_flow.client.limits import FINE_TUNE_MAX_BYTES, FINE_TUNE_ZIP_MAX_BYTES, max_file_bytes
from bailian_flow.client.models.deployments import DeploymentCreate
from bailian_flow.client.models.files import UploadResult
from bailian_flow.client.models.fine_tunes import FineTuneJob, FineTunePage, FineTuneStatus
from bailian_flow.client.resources.batches import list_filters

# help.aliyun.com/zh/model-studio/upload-file-api (and document_detail/2712476.html), "返回示例".
UPLOAD_SAMPLE = """{
    "request_id": "xxx",
    "data": {
        "uploaded_files": [
            {"file_id": "9G2EaQtq7p1fw7oRhYXdHTtDFYAMVQSh95432B38CAB211EDB8F952C2E8001733", "name": "test.txt"}
        ],
        "failed_uploads": [
            {"name": "test1.jpg", "code": "BadRequest.TooLarge",
             "message": "Out of space, <839> B of <1024> B storage space has been used."},
            {"name": "test2.jpg", "code": "BadRequest.TooMany",
             "message": "Out of number, <10> of <10> files has been uploaded."}
        ]
    }
}"""

# www.alibabacloud.com/help/tc/model-studio/list-fine-tuning-jobs-api, "返回範例" (the CANCELED job cut where the
# stored copy ends, after its `code`).
LIST_SAMPLE = """{
    "request_id": "2182ef64-6398-457b-b3f6-5fde5fd6b388",
    "output": {
        "page_no": 2, "page_size": 10, "total": 12,
        "jobs": [
            {"job_id": "ft-202410291653-1c7f", "job_name": "ft-202410291653-1c7f", "status": "SUCCEEDED",
             "finetuned_output": "qwen3-14b-suffix-ft-202410291653-1c7f", "model": "qwen3-14b",
             "base_model": "qwen3-14b", "training_file_ids": ["976bd01a-f30b-4414-86fd-50c54486e3ef"],
             "validation_file_ids": [],
             "hyper_parameters": {"n_epochs": 3, "batch_size": 32, "max_length": 8192, "learning_rate": "1.6e-5",
                                  "lr_scheduler_type": "linear", "split": 0.9},
             "training_type": "sft", "create_time": "2024-10-29 16:53:53", "workspace_id": "llm-v71tlv***",
             "user_identity": "1396993924585947", "modifier": "1396993924585947",
             "creator": "1396993924585947", "end_time": "2024-10-29 17:11:26", "group": "llm", "usage": 279808},
            {"job_id": "ft-202410291512-1851", "job_name": "ft-202410291512-1851", "status": "CANCELED",
             "model": "qwen3-14b", "base_model": "qwen3-14b",
             "training_file_ids": ["86a9fe7f-dd77-43b0-9834-2170e12339ec", "03ead352-6190-4328-8016-61821c23d4fc"],
             "validation_file_ids": [],
             "hyper_parameters": {"n_epochs": 3, "batch_size": 32, "max_length": 8192, "learning_rate": "1.6e-5",
                                  "lr_scheduler_type": "linear", "split": 0.9},
             "code": "1"}
        ]
    }
}"""

TRAINING_SLOT = "Too many fine-tune job in running, please retry later."


def test_failed_uploads_of_the_documented_sample_are_the_files_quota() -> None:
    result = UploadResult.model_validate(json.loads(UPLOAD_SAMPLE)["data"])
    assert [f.file_id for f in result.uploaded_files] == [
        "9G2EaQtq7p1fw7oRhYXdHTtDFYAMVQSh95432B38CAB211EDB8F952C2E8001733"
    ]
    refusals = [e.upload_refusal(f.name or "", f.code, f.message or "", "xxx") for f in result.failed_uploads]
    for refusal, code in zip(refusals, ("BadRequest.TooLarge", "BadRequest.TooMany"), strict=True):
        assert isinstance(refusal, e.QuotaExceededError) and refusal.quota == "files"
        assert refusal.code == code and refusal.status == 200 and refusal.request_id == "xxx"
        # Never retried: waiting for a file to be deleted is the caller's queue, not a backoff.
        assert not is_retryable(refusal, idempotent=True)


def test_other_failed_uploads_are_bad_requests_naming_the_code() -> None:
    refusal = e.upload_refusal("a.jsonl", "BadRequest.InvalidFormat", "not a jsonl file")
    assert isinstance(refusal, e.BadRequestError) and isinstance(refusal, e.UploadFailedError)
    assert not isinstance(refusal, e.QuotaExceededError)
    assert "BadRequest.InvalidFormat" in str(refusal) and "a.jsonl" in str(refusal)
    # The same code without the storage sentence is a file too large for itself: waiting never helps.
    own_size = e.upload_refusal("big.zip", "BadRequest.TooLarge", "The file exceeds the limit of 1 GB.")
    assert isinstance(own_size, e.UploadFailedError)


async def test_a_full_file_quota_is_a_quota_wait(client: BailianClient, control: Control) -> None:
    await control._call("POST", "/config", {"quotas": {"files": 1}})
    await client.files.upload(SFT_LINE, filename="first.jsonl")
    with pytest.raises(e.QuotaExceededError) as full:
        await client.files.upload(SFT_LINE, filename="second.jsonl")
    assert full.value.quota == "files"


async def _never(size: int) -> AsyncIterator[bytes]:
    raise AssertionError("a file over its limit must not be read, let alone sent")
    yield b""  # pragma: no cover - makes this an async generator


async def test_files_over_the_documented_size_are_refused_before_sending(
    client: BailianClient, control: Control
) -> None:
    before = await control.state()
    with pytest.raises(e.FileTooLargeError) as jsonl:
        await client.files.upload(_never(0), filename="train.jsonl", size=FINE_TUNE_MAX_BYTES + 1)
    assert jsonl.value.limit == FINE_TUNE_MAX_BYTES and "train.jsonl" in str(jsonl.value)
    with pytest.raises(e.FileTooLargeError) as archive:
        await client.files.upload(_never(0), filename="clips.zip", size=FINE_TUNE_ZIP_MAX_BYTES + 1)
    assert archive.value.limit == FINE_TUNE_ZIP_MAX_BYTES
    assert await control.state() == before  # nothing reached the service
    assert max_file_bytes("fine-tune", "a.jsonl") == 300 << 20 and max_file_bytes("batch", "b.jsonl") == 500 << 20
    assert max_file_bytes("fine-tune", "A.ZIP") == 1 << 30 and max_file_bytes("something-new", "x") is None


async def test_one_training_at_a_time_is_a_wait_not_a_throttle(bailian_env: Any, control: Control) -> None:
    fast = RetryConfig(max_retries=3, initial_delay=0.01, max_delay=0.02)
    async with BailianClient(retry=fast, rate_limits=dict.fromkeys(LIMITERS)) as client:
        file_id = (await client.files.upload(SFT_LINE, filename="t.jsonl")).file_id
        await control.faults(
            {
                "method": "POST",
                "path": "/api/v1/fine-tunes",
                "status": 429,
                "code": "Throttling",
                "message": TRAINING_SLOT,
            }
        )
        with pytest.raises(e.QuotaExceededError) as slot:
            await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
        assert slot.value.quota == "training-slot" and slot.value.status == 429
        assert await control.fault_hits() == [1]  # asked once: no backoff, the caller waits in line
        await control._call("DELETE", "/faults")
        # True throttling keeps its backoff: retried, then the create goes through.
        await control.faults(
            {
                "method": "POST",
                "path": "/api/v1/fine-tunes",
                "status": 429,
                "code": "Throttling",
                "times": 2,
                "message": "Requests rate limit exceeded, please try again later.",
            }
        )
        job = await client.fine_tunes.create("qwen3-14b", training_file_ids=[file_id])
        assert job.job_id and await control.fault_hits() == [2]


def test_the_twenty_jobs_quota_keeps_its_name() -> None:
    quota = e.status_error(429, "Throttling", "Only 20 fine-tune job in running or succeeded allowed per user.")
    assert isinstance(quota, e.QuotaExceededError) and quota.quota == "fine-tune-jobs"
    slot = e.status_error(429, "Throttling", TRAINING_SLOT)
    assert isinstance(slot, e.QuotaExceededError) and slot.quota == "training-slot"
    throttled = e.status_error(429, "Throttling.RateQuota", "Requests rate limit exceeded")
    assert type(throttled) is e.RateLimitError


def test_fine_tune_jobs_parse_the_documented_list() -> None:
    page = FineTunePage.model_validate(json.loads(LIST_SAMPLE)["output"])
    done, canceled = page.jobs
    assert done.status == FineTuneStatus.SUCCEEDED and done.output_model == done.finetuned_output
    assert done.usage == 279808 and done.end_time == "2024-10-29 17:11:26"
    assert done.hyper_parameters is not None and done.hyper_parameters.learning_rate == pytest.approx(1.6e-5)
    # Only what was declared comes back: no default is filled in for what the create left out.
    assert set(done.hyper_parameters.declared()) == {
        "n_epochs",
        "batch_size",
        "max_length",
        "learning_rate",
        "lr_scheduler_type",
        "split",
    }
    assert canceled.status == FineTuneStatus.CANCELED and canceled.finetuned_output is None
    assert canceled.output_model is None and canceled.usage is None
    # The documented name is the job id: it says nothing of a name we sent; the files do identify the job.
    assert not done.name_kept() and not canceled.name_kept()
    assert canceled.made_from(["03ead352-6190-4328-8016-61821c23d4fc", "86a9fe7f-dd77-43b0-9834-2170e12339ec"])
    assert not canceled.made_from(["976bd01a-f30b-4414-86fd-50c54486e3ef"]) and not done.made_from([])


def test_job_fields_the_object_page_spells_otherwise() -> None:
    spelled = FineTuneJob.model_validate(
        {"job_id": "ft-1", "jobs_name": "ft-1", "status": "RUNNING", "learning_rate": 1}
    )
    assert spelled.job_name == "ft-1" and spelled.output_model is None
    numeric = FineTuneJob.model_validate(
        {"job_id": "ft-2", "status": "SUCCEEDED", "hyper_parameters": {"learning_rate": 2e-5}, "model_name": "mine"}
    )
    assert numeric.hyper_parameters is not None and numeric.hyper_parameters.learning_rate == 2e-5
    assert numeric.model_name == "mine"


async def test_ptu_deployment_without_suffix_is_named_by_the_service(client: BailianClient) -> None:
    # The create-deployment page's PTU sample: no suffix, the backend names the deployment.
    sample = {
        "name": "my_qwen_flash",
        "model_name": "qwen-flash-2025-07-28",
        "plan": "ptu",
        "ptu_capacity": {"input_tpm": 10000, "output_tpm": 1000},
    }
    assert DeploymentCreate.model_validate(sample).to_body() == sample
    created = await client.deployments.create(
        "qwen3-14b", plan="ptu", ptu_capacity={"input_tpm": 10000, "output_tpm": 1000}, name="bf-ptu"
    )
    assert created.deployed_model.startswith("qwen3-14b")
    fetched = await client.deployments.get(created.deployed_model)
    assert fetched.deployed_model == created.deployed_model


def test_batch_list_filters_are_the_documented_query() -> None:
    from datetime import datetime, timezone

    params = list_filters(
        status=["completed", "expired"],
        ds_name="bf-run",
        input_file_ids=["file-abc123", "file-def456"],
        create_after="20260101000000",
        create_before=datetime(2026, 2, 1, 8, 30),
    )
    assert params == {
        "status": "completed,expired",
        "ds_name": "bf-run",
        "input_file_ids": "file-abc123,file-def456",
        "create_after": "20260101000000",
        "create_before": "20260201083000",
    }
    assert list_filters(status="in_progress") == {"status": "in_progress"}
    with pytest.raises(ValueError):
        list_filters(input_file_ids=[f"file-{n}" for n in range(21)])
    with pytest.raises(ValueError):
        list_filters(create_after=datetime(2026, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError):
        list_filters(create_after="2026-01-01")


async def test_batch_list_sends_the_status_filter(client: BailianClient) -> None:
    from bailian_flow.client.models.batches import BatchStatus

    file = await client.compat_files.upload(
        b'{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus","messages":[]}}\n',
        purpose="batch",
        filename="in.jsonl",
    )
    batch = await client.batches.create(file.id, "/v1/chat/completions")
    assert [b.id async for b in client.batches.list(status=[BatchStatus.VALIDATING])] == [batch.id]
    assert [b.id async for b in client.batches.list(status=BatchStatus.COMPLETED)] == []


async def test_a_lost_create_is_found_by_its_training_files(client: BailianClient) -> None:
    # The name we send is not documented to be kept (service-contract.md#C2): the files identify the job (#C3).
    first = (await client.files.upload(SFT_LINE, filename="a.jsonl")).file_id
    second = (await client.files.upload(SFT_LINE, filename="b.jsonl")).file_id
    mine = await client.fine_tunes.create("qwen3-14b", training_file_ids=[first], job_name="bf-run-1")
    other = await client.fine_tunes.create("qwen3-14b", training_file_ids=[second], job_name="bf-run-1")
    assert [job.job_id for job in await client.fine_tunes.made_from([first])] == [mine.job_id]
    assert [job.job_id for job in await client.fine_tunes.made_from([second], model="qwen3-14b")] == [other.job_id]
    assert await client.fine_tunes.made_from(["no-such-file"]) == []
