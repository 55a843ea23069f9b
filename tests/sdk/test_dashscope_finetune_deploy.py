"""The official dashscope SDK, unmodified, runs the fine-tune and deployment lifecycle against the emulator."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import dashscope
import pytest
from emulator_support import Emulator


@pytest.fixture
def sdk(emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    # The SDK reads these module attributes at call time (DASHSCOPE_HTTP_BASE_URL only at import time).
    monkeypatch.setattr(dashscope, "base_http_api_url", emulator_reset.url + "/api/v1")
    monkeypatch.setattr(dashscope, "api_key", emulator_reset.api_key)
    yield emulator_reset


def advance(emulator: Emulator, seconds: float) -> None:
    body = json.dumps({"advance": seconds}).encode()
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/clock", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def upload_training_file(tmp_path: Path) -> str:
    path = tmp_path / "train.jsonl"
    record = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    uploaded = dashscope.Files.upload(file_path=str(path), purpose="fine-tune")
    assert uploaded.status_code == HTTPStatus.OK, uploaded
    # Native files answer under "data"; the SDK exposes it as `output`.
    file_id: str = uploaded.output["uploaded_files"][0]["file_id"]
    return file_id


def create_job(file_id: str, **kwargs: Any) -> Any:
    created = dashscope.FineTunes.call(
        model="qwen3-14b", training_file_ids=file_id, hyper_parameters={"n_epochs": 1}, **kwargs
    )
    assert created.status_code == HTTPStatus.OK, created
    return created


def test_fine_tune_lifecycle(sdk: Emulator, tmp_path: Path) -> None:
    file_id = upload_training_file(tmp_path)
    created = create_job(file_id)
    job_id = created.output.job_id
    assert created.output.status in ("PENDING", "QUEUING")
    assert created.output.training_file_ids == [file_id]
    assert created.request_id

    events = [event.output for event in dashscope.FineTunes.stream_events(job_id)]
    assert events and events[-1].endswith("##FT_COMPLETE##")

    fetched = dashscope.FineTunes.get(job_id)
    assert fetched.status_code == HTTPStatus.OK
    assert fetched.output.status == "SUCCEEDED"
    assert fetched.output.usage > 0 and fetched.output.end_time
    assert fetched.output.finetuned_output

    waited = dashscope.FineTunes.wait(job_id)
    assert waited.output["status"] == "SUCCEEDED"

    listed = dashscope.FineTunes.list(page_no=1, page_size=10)
    assert listed.status_code == HTTPStatus.OK
    assert listed.output.total == 1
    assert [job.job_id for job in listed.output.jobs] == [job_id]

    logs = dashscope.FineTunes.logs(job_id, offset=0, line=1000)
    assert logs.status_code == HTTPStatus.OK
    assert logs.output["logs"] == events
    assert logs.output["total"] == len(events)

    deleted = dashscope.FineTunes.delete(job_id)
    assert deleted.status_code == HTTPStatus.OK and deleted.output.status == "success"
    missing = dashscope.FineTunes.get(job_id)
    assert missing.status_code == HTTPStatus.NOT_FOUND and missing.code == "NotFound"


def test_fine_tune_cancel_and_errors(sdk: Emulator, tmp_path: Path) -> None:
    file_id = upload_training_file(tmp_path)
    job_id = create_job(file_id).output.job_id
    not_yet = dashscope.FineTunes.delete(job_id)
    assert not_yet.status_code == HTTPStatus.BAD_REQUEST and not_yet.code == "UnsupportedOperation"
    canceled = dashscope.FineTunes.cancel(job_id)
    assert canceled.status_code == HTTPStatus.OK and canceled.output.status == "success"
    advance(sdk, 5)
    assert dashscope.FineTunes.get(job_id).output.status == "CANCELED"

    missing = dashscope.FineTunes.call(model="qwen3-14b", training_file_ids=[])
    assert missing.status_code == HTTPStatus.BAD_REQUEST
    assert (missing.code, missing.message) == ("InvalidParameter", "Missing training files")


def test_deployment_lifecycle(sdk: Emulator, tmp_path: Path) -> None:
    file_id = upload_training_file(tmp_path)
    job_id = create_job(file_id).output.job_id
    advance(sdk, 80)
    model = dashscope.FineTunes.get(job_id).output.finetuned_output

    deployed = dashscope.Deployments.call(model=model, capacity=1, suffix="sdk1")
    assert deployed.status_code == HTTPStatus.OK, deployed
    name = deployed.output.deployed_model
    assert deployed.output.status == "PENDING" and deployed.output.model_name == model
    assert deployed.output.base_capacity == 1 and deployed.output.ready_capacity == 0

    again = dashscope.Deployments.call(model=model, capacity=1, suffix="sdk1")
    assert again.status_code == HTTPStatus.CONFLICT and again.code == "Conflict"

    advance(sdk, 20)
    fetched = dashscope.Deployments.get(name)
    assert (fetched.output.status, fetched.output.ready_capacity) == ("RUNNING", 1)

    listed = dashscope.Deployments.list(page_no=1, page_size=10)
    assert listed.output.total == 1
    assert [item.deployed_model for item in listed.output.deployments] == [name]

    scaled = dashscope.Deployments.scale(name, capacity=2)
    assert scaled.status_code == HTTPStatus.OK, scaled
    assert (scaled.output.status, scaled.output.capacity) == ("UPDATING", 2)
    advance(sdk, 20)
    assert dashscope.Deployments.get(name).output.ready_capacity == 2

    deleted = dashscope.Deployments.delete(name)
    assert deleted.status_code == HTTPStatus.OK
    assert deleted.output.status == "DELETING"
    advance(sdk, 10)
    gone = dashscope.Deployments.get(name)
    assert gone.status_code == HTTPStatus.NOT_FOUND and gone.output is None


def test_unknown_model_is_reported(sdk: Emulator) -> None:
    answer = dashscope.Deployments.call(model="no-such-model", capacity=1)
    assert answer.status_code == HTTPStatus.NOT_FOUND
    assert answer.message == "Model: no-such-model not found!"
