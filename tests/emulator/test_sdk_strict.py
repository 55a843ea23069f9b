"""The vendor SDK (dashscope, unmodified) reads every answer of the strict profile: names not kept, a queued
second job, a refused create and delete, lists without descriptions."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import dashscope
import pytest
from emulator_support import Emulator


@pytest.fixture
def strict(frozen: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    # The frozen clock: a job stays PENDING and a file unlisted until the test moves time.
    frozen.reset()
    frozen.configure({"profile": "strict"})
    monkeypatch.setattr(dashscope, "base_http_api_url", frozen.url + "/api/v1")
    monkeypatch.setattr(dashscope, "api_key", frozen.api_key)
    yield frozen


def _advance(emulator: Emulator, seconds: float) -> None:
    body = json.dumps({"advance": seconds}).encode()
    request = urllib.request.Request(f"{emulator.url}/_emulator/clock", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _upload(tmp_path: Path) -> str:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n", encoding="utf-8")
    uploaded = dashscope.Files.upload(file_path=str(path), purpose="fine-tune", description="kept by get")
    assert uploaded.status_code == HTTPStatus.OK, uploaded
    file_id: str = uploaded.output["uploaded_files"][0]["file_id"]
    return file_id


def test_the_sdk_reads_the_strict_fine_tune_answers(strict: Emulator, tmp_path: Path) -> None:
    file_id = _upload(tmp_path)
    created = dashscope.FineTunes.call(model="qwen3-14b", training_file_ids=file_id, job_name="bf-run-1-g1")
    assert created.status_code == HTTPStatus.OK, created
    assert created.output.job_name == created.output.job_id
    again = dashscope.FineTunes.call(model="qwen3-14b", training_file_ids=file_id)
    assert (again.status_code, again.message) == (429, "Too many fine-tune job in running, please retry later.")
    fetched = dashscope.FineTunes.get(created.output.job_id)
    assert fetched.status_code == HTTPStatus.OK and fetched.output.status == "PENDING"
    listed = dashscope.Files.list(page=1, page_size=10)
    # Listed after the strict lag (30 s) only, and without its description.
    assert listed.status_code == HTTPStatus.OK and listed.output["files"] == []
    _advance(strict, 30)
    [item] = dashscope.Files.list(page=1, page_size=10).output["files"]
    assert item["file_id"] == file_id and "description" not in item
    got = dashscope.Files.get(file_id)
    assert got.output["description"] == "kept by get"


def test_the_sdk_reads_a_refused_delete(strict: Emulator) -> None:
    deployed = dashscope.Deployments.call(model="qwen3-8b", capacity=1)
    assert deployed.status_code == HTTPStatus.OK, deployed
    refused = dashscope.Deployments.delete(deployed.output.deployed_model)
    assert (refused.status_code, refused.code) == (400, "OperationDenied")
