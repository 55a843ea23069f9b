"""The official openai SDK, unmodified, against the emulator's compatible-mode files and batches."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import openai
import pytest
from emulator_support import Emulator


@pytest.fixture
def client(emulator_reset: Emulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=emulator_reset.api_key, base_url=f"{emulator_reset.url}/compatible-mode/v1", max_retries=0
    ) as client:
        yield client


def requests_file(count: int, model: str = "qwen-plus") -> bytes:
    lines = []
    for n in range(count):
        body = {"model": model, "messages": [{"role": "user", "content": f"question {n}"}]}
        lines.append({"custom_id": f"req-{n}", "method": "POST", "url": "/v1/chat/completions", "body": body})
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(client: openai.OpenAI, content: bytes, name: str = "requests.jsonl") -> str:
    return client.files.create(file=(name, io.BytesIO(content)), purpose="batch").id


def test_files_create_list_retrieve_content_delete(client: openai.OpenAI) -> None:
    content = requests_file(2)
    created = client.files.create(file=("requests.jsonl", io.BytesIO(content)), purpose="batch")
    assert created.id.startswith("file-batch-")
    assert created.bytes == len(content)
    assert created.filename == "requests.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"

    retrieved = client.files.retrieve(created.id)
    assert retrieved == created
    assert client.files.content(created.id).content == content

    more = [upload(client, b"{}\n", f"f{n}.jsonl") for n in range(4)]
    # The SDK follows `after` cursors by itself; two per page forces three pages.
    listed = [item.id for item in client.files.list(limit=2)]
    assert listed == [*reversed(more), created.id]
    assert [item.id for item in client.files.list(purpose="batch", order="asc")] == [created.id, *more]

    deleted = client.files.delete(created.id)
    assert deleted.deleted is True
    assert deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


def test_bad_purpose_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="vision")
    assert caught.value.status_code == 400


def wait_for_terminal(client: openai.OpenAI, batch_id: str, timeout: float = 15) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.05)


def test_batch_runs_to_completion_and_outputs_one_line_per_request(client: openai.OpenAI) -> None:
    input_file_id = upload(client, requests_file(5))
    batch = client.batches.create(
        input_file_id=input_file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"ds_name": "sdk run"},
    )
    assert batch.status == "validating"
    assert batch.input_file_id == input_file_id
    assert batch.metadata == {"ds_name": "sdk run"}
    seen = {batch.status}
    deadline = time.monotonic() + 15
    while batch.status != "completed":
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.02)
        batch = client.batches.retrieve(batch.id)
        seen.add(batch.status)
    assert "in_progress" in seen
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (5, 5, 0)
    assert batch.completed_at is not None
    assert batch.error_file_id is None
    assert batch.output_file_id is not None

    output_file = client.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output"
    lines = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"req-{n}" for n in range(5)]
    for n, line in enumerate(lines):
        completion = line["response"]["body"]
        assert completion["object"] == "chat.completion"
        assert f"question {n}" in completion["choices"][0]["message"]["content"]


def test_invalid_batch_fails_with_errors_the_sdk_parses(client: openai.OpenAI) -> None:
    content = requests_file(2).replace(b'"req-1"', b'"req-0"')
    batch = client.batches.create(
        input_file_id=upload(client, content), endpoint="/v1/chat/completions", completion_window="24h"
    )
    failed = wait_for_terminal(client, batch.id)
    assert failed.status == "failed"
    assert failed.errors is not None
    assert failed.errors.data is not None
    assert failed.errors.data[0].code == "duplicate_custom_id"
    assert failed.errors.data[0].line == 2


def test_batches_list_and_cancel(client: openai.OpenAI) -> None:
    input_file_id = upload(client, requests_file(1))
    ids = [
        client.batches.create(input_file_id=input_file_id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(2)  # the service runs at most two at once
    ]
    assert [batch.id for batch in client.batches.list(limit=1)] == list(reversed(ids))
    cancelling = client.batches.cancel(ids[0])
    assert cancelling.status in ("cancelling", "cancelled")
    assert cancelling.cancelling_at is not None
    assert wait_for_terminal(client, ids[0]).status == "cancelled"
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_does_not_exist")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id="file-batch-nope", endpoint="/v1/chat/completions", completion_window="24h")
