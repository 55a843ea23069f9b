"""The official dashscope SDK's `Files` API, unmodified, against the emulator's native files."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from http import HTTPStatus
from pathlib import Path

import dashscope
import pytest
from dashscope import Files
from emulator_support import Emulator


@pytest.fixture
def sdk(emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    # The SDK reads this module attribute on every call (it is DASHSCOPE_HTTP_BASE_URL at import time).
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{emulator_reset.url}/api/v1")
    return emulator_reset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "train_sft.jsonl"
    records = [
        {"messages": [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": "a"}]} for n in range(3)
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_upload_get_list_delete_round_trip(sdk: Emulator, dataset: Path) -> None:
    uploaded = Files.upload(file_path=str(dataset), purpose="fine-tune", description="sft set", api_key=sdk.api_key)
    assert uploaded.status_code == HTTPStatus.OK, uploaded
    assert uploaded.request_id
    [item] = uploaded.output["uploaded_files"]
    assert item["name"] == "train_sft.jsonl"
    assert uploaded.output["failed_uploads"] == []
    file_id = item["file_id"]

    info = Files.get(file_id, api_key=sdk.api_key)
    assert info.status_code == HTTPStatus.OK
    assert info.output["file_id"] == file_id
    assert info.output["description"] == "sft set"
    assert info.output["size"] == dataset.stat().st_size
    assert info.output["md5"] == hashlib.md5(dataset.read_bytes()).hexdigest()

    listing = Files.list(page=1, page_size=10, api_key=sdk.api_key)
    assert listing.status_code == HTTPStatus.OK
    assert listing.output["total"] == 1
    assert [entry["file_id"] for entry in listing.output["files"]] == [file_id]

    deleted = Files.delete(file_id, api_key=sdk.api_key)
    assert deleted.status_code == HTTPStatus.OK
    assert deleted.request_id

    missing = Files.get(file_id, api_key=sdk.api_key)
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert missing.code == "NotFound"
    assert missing.message


def test_list_pages(sdk: Emulator, dataset: Path) -> None:
    ids = set()
    for _ in range(3):
        answer = Files.upload(file_path=str(dataset), api_key=sdk.api_key)
        ids.add(answer.output["uploaded_files"][0]["file_id"])
    first = Files.list(page=1, page_size=2, api_key=sdk.api_key)
    second = Files.list(page=2, page_size=2, api_key=sdk.api_key)
    assert first.output["total"] == 3
    assert len(first.output["files"]) == 2
    assert len(second.output["files"]) == 1
    assert {entry["file_id"] for entry in first.output["files"] + second.output["files"]} == ids


def test_too_large_upload_is_reported_by_the_sdk(sdk: Emulator, dataset: Path) -> None:
    request = urllib.request.Request(f"{sdk.url}/_emulator/files/limits", data=b'{"fine-tune": 10}', method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["fine-tune"] == 10
    answer = Files.upload(file_path=str(dataset), api_key=sdk.api_key)
    assert answer.status_code == HTTPStatus.OK
    assert answer.output["uploaded_files"] == []
    assert answer.output["failed_uploads"][0]["code"] == "BadRequest.TooLarge"
