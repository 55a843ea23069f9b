"""Native files (`/api/v1/files`) on the emulator over loopback: upload forms, limits, paging, get, delete."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from core_api import Api
from emulator_support import Emulator


@pytest.fixture
async def api(emulator_reset: Emulator) -> AsyncIterator[Api]:
    emulator_reset.configure({"profile": "default"})  # the behaviours tested here, whatever the suite's profile
    async with aiohttp.ClientSession() as session:
        yield Api(session, emulator_reset.url, emulator_reset.api_key)


async def upload(api: Api, parts: list[tuple[str, Any, str | None]]) -> tuple[int, Any]:
    """POST a multipart form whose parts are (name, value, filename) in exactly this order."""
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value, filename in parts:
        if filename is None:
            form.add_field(name, value)
        else:
            form.add_field(name, value, filename=filename, content_type="application/octet-stream")
    async with api.session.post(
        f"{api.url}/api/v1/files", data=form, headers={"Authorization": f"Bearer {api.api_key}"}
    ) as response:
        return response.status, await response.json(content_type=None)


async def test_upload_several_files_pairs_descriptions_by_position(api: Api) -> None:
    first, second = b'{"a": 1}\n', b'{"b": 2}\n{"c": 3}\n'
    status, body = await upload(
        api,
        [
            ("files", first, "one.jsonl"),
            ("files", second, "two.jsonl"),
            # Fields after the files still apply: other clients than the dashscope SDK may send them last.
            ("purpose", "batch", None),
            ("descriptions", "first file", None),
            ("descriptions", "second file", None),
        ],
    )
    assert status == 200, body
    assert body["request_id"]
    uploaded = body["data"]["uploaded_files"]
    assert [item["name"] for item in uploaded] == ["one.jsonl", "two.jsonl"]
    assert body["data"]["failed_uploads"] == []
    status, info = await api.native("GET", f"/files/{uploaded[1]['file_id']}")
    assert status == 200, info
    data = info["data"]
    assert data["file_id"] == uploaded[1]["file_id"]
    assert data["description"] == "second file"
    assert data["purpose"] == "batch"
    assert data["size"] == len(second)
    assert data["md5"] == hashlib.md5(second).hexdigest()
    assert set(data) >= {"name", "gmt_create", "url", "region"}
    async with api.session.get(data["url"], headers={"Authorization": f"Bearer {api.api_key}"}) as response:
        assert await response.read() == second


async def test_purpose_defaults_to_fine_tune_and_unknown_purpose_is_rejected(api: Api) -> None:
    status, body = await upload(api, [("files", b"{}\n", "a.jsonl")])
    assert status == 200, body
    file_id = body["data"]["uploaded_files"][0]["file_id"]
    _, info = await api.native("GET", f"/files/{file_id}")
    assert info["data"]["purpose"] == "fine-tune"

    status, body = await upload(api, [("purpose", "vision", None), ("files", b"{}\n", "a.jsonl")])
    assert status == 400
    assert body["code"] == "InvalidParameter"
    assert (await api.state())["live"]["files"] == 1


async def test_form_without_files_is_empty_input(api: Api) -> None:
    status, body = await upload(api, [("purpose", "fine-tune", None)])
    assert status == 400
    assert body["code"] == "BadRequest.EmptyInput"


async def test_file_over_the_purpose_limit_goes_to_failed_uploads(api: Api) -> None:
    limits = await api.control("POST", "/files/limits", {"fine-tune": 16})
    assert limits["fine-tune"] == 16
    status, body = await upload(
        api,
        [("files", b"x" * 17, "big.jsonl"), ("files", b"y" * 16, "ok.jsonl")],
    )
    assert status == 200, body
    assert [item["name"] for item in body["data"]["uploaded_files"]] == ["ok.jsonl"]
    [failed] = body["data"]["failed_uploads"]
    assert failed["name"] == "big.jsonl"
    assert failed["code"] == "BadRequest.TooLarge"
    assert failed["message"]
    state = await api.state()
    assert state["live"]["files"] == 1
    assert state["created"]["files"] == 1


async def test_limit_depends_on_purpose_sent_after_the_file(api: Api) -> None:
    await api.control("POST", "/files/limits", {"fine-tune": 1000, "batch": 4})
    status, body = await upload(api, [("files", b"12345", "a.jsonl"), ("purpose", "batch", None)])
    assert status == 200, body
    assert body["data"]["uploaded_files"] == []
    assert body["data"]["failed_uploads"][0]["code"] == "BadRequest.TooLarge"


async def test_reset_restores_default_limits(api: Api, emulator_reset: Emulator) -> None:
    await api.control("POST", "/files/limits", {"fine-tune": 1})
    emulator_reset.reset()
    limits = await api.control("GET", "/files/limits")
    assert limits["fine-tune"] == 300 * 1024 * 1024


async def test_list_pages_newest_first(api: Api) -> None:
    ids = []
    for index in range(5):
        _, body = await upload(api, [("files", f'{{"n": {index}}}\n'.encode(), f"f{index}.jsonl")])
        ids.append(body["data"]["uploaded_files"][0]["file_id"])
    status, body = await api.native("GET", "/files", params={"page_no": 1, "page_size": 2})
    assert status == 200, body
    page = body["data"]
    assert page["total"] == 5
    assert (page["page_no"], page["page_size"]) == (1, 2)
    seen = [item["file_id"] for item in page["files"]]
    for page_no in (2, 3):
        _, body = await api.native("GET", "/files", params={"page_no": page_no, "page_size": 2})
        seen += [item["file_id"] for item in body["data"]["files"]]
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5
    status, body = await api.native("GET", "/files", params={"page_size": 0})
    assert status == 400
    assert body["code"] == "InvalidParameter"


async def test_delete_removes_file_and_unknown_ids_are_not_found(api: Api) -> None:
    _, body = await upload(api, [("files", b"{}\n", "a.jsonl")])
    file_id = body["data"]["uploaded_files"][0]["file_id"]
    status, body = await api.native("DELETE", f"/files/{file_id}")
    assert status == 200, body
    assert body["request_id"]
    for method in ("GET", "DELETE"):
        status, body = await api.native(method, f"/files/{file_id}")
        assert status == 404
        assert body["code"] == "NotFound"
    state = await api.state()
    assert state["live"]["files"] == 0
    assert state["created"]["files"] == 1


async def test_upload_requires_multipart(api: Api) -> None:
    status, body = await api.native("POST", "/files", json={"files": []})
    assert status == 400
    assert body["code"] == "InvalidParameter"


async def test_fine_tunes_see_uploaded_files_and_not_deleted_ones(api: Api) -> None:
    _, body = await upload(api, [("files", b'{"messages": []}\n', "train.jsonl")])
    file_id = body["data"]["uploaded_files"][0]["file_id"]
    status, answer = await api.native(
        "POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id]}
    )
    assert status == 200, answer
    await api.native("DELETE", f"/files/{file_id}")
    status, answer = await api.native(
        "POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id]}
    )
    assert status == 400
    assert file_id in answer["message"]
