"""OpenAI-compatible files (`/compatible-mode/v1/files`) on the emulator over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from emulator_support import Emulator

PREFIX = "/compatible-mode/v1/files"


class Compat:
    def __init__(self, session: aiohttp.ClientSession, emulator: Emulator) -> None:
        self.session = session
        self.url = emulator.url + PREFIX
        self.headers = {"Authorization": f"Bearer {emulator.api_key}"}

    async def upload(self, content: bytes, purpose: str | None, filename: str = "in.jsonl") -> tuple[int, Any]:
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("file", content, filename=filename, content_type="application/jsonl")
        if purpose is not None:
            form.add_field("purpose", purpose)  # after the file: order must not matter
        async with self.session.post(self.url, data=form, headers=self.headers) as response:
            return response.status, await response.json()

    async def call(self, method: str, path: str = "", **params: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, params=params, headers=self.headers) as response:
            return response.status, await response.json()


@pytest.fixture
async def compat(emulator_reset: Emulator) -> AsyncIterator[Compat]:
    async with aiohttp.ClientSession() as session:
        yield Compat(session, emulator_reset)


@pytest.mark.parametrize(("purpose", "prefix"), [("batch", "file-batch-"), ("file-extract", "file-fe-")])
async def test_upload_returns_openai_file_object(compat: Compat, purpose: str, prefix: str) -> None:
    content = b'{"custom_id": "1"}\n'
    status, body = await compat.upload(content, purpose, filename="requests.jsonl")
    assert status == 200, body
    assert body["id"].startswith(prefix)
    assert body["object"] == "file"
    assert body["bytes"] == len(content)
    assert body["filename"] == "requests.jsonl"
    assert body["purpose"] == purpose
    assert body["status"] == "processed"
    assert isinstance(body["created_at"], int)
    status, again = await compat.call("GET", f"/{body['id']}")
    assert status == 200
    assert again == body


async def test_upload_rejects_bad_purpose_and_missing_file(compat: Compat) -> None:
    status, body = await compat.upload(b"x", "assistants")
    assert status == 400
    assert body["error"]["code"] == "invalid_parameter_error"
    assert body["error"]["param"] == "purpose"
    status, body = await compat.upload(b"x", None)
    assert status == 400
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("purpose", "batch")
    async with compat.session.post(compat.url, data=form, headers=compat.headers) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "file"


async def test_upload_over_limit_is_413(compat: Compat, emulator_reset: Emulator) -> None:
    async with compat.session.post(f"{emulator_reset.url}/_emulator/files/limits", json={"batch": 8}) as response:
        assert response.status == 200
    status, body = await compat.upload(b"123456789", "batch")
    assert status == 413
    assert body["error"]["code"] == "BadRequest.TooLarge"
    status, listing = await compat.call("GET")
    assert listing["data"] == []


async def test_content_streams_the_exact_bytes(compat: Compat) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB, crosses several chunks
    _, body = await compat.upload(content, "batch")
    async with compat.session.get(f"{compat.url}/{body['id']}/content", headers=compat.headers) as response:
        assert response.status == 200
        assert await response.read() == content


async def test_list_cursor_pagination_and_purpose_filter(compat: Compat) -> None:
    created = []
    for index in range(5):
        _, body = await compat.upload(f"{index}\n".encode(), "batch" if index % 2 == 0 else "file-extract")
        created.append(body["id"])
    status, page = await compat.call("GET", limit=2)
    assert status == 200, page
    assert page["object"] == "list"
    assert [item["id"] for item in page["data"]] == [created[4], created[3]]  # newest first
    assert page["has_more"] is True
    assert page["first_id"] == created[4]
    assert page["last_id"] == created[3]
    _, rest = await compat.call("GET", limit=10, after=page["last_id"])
    assert [item["id"] for item in rest["data"]] == [created[2], created[1], created[0]]
    assert rest["has_more"] is False
    _, ascending = await compat.call("GET", order="asc")
    assert [item["id"] for item in ascending["data"]] == created
    _, batch_only = await compat.call("GET", purpose="batch")
    assert [item["id"] for item in batch_only["data"]] == [created[4], created[2], created[0]]
    for params in ({"limit": 0}, {"limit": 2001}, {"limit": "x"}, {"after": "file-batch-unknown"}):
        status, refused = await compat.call("GET", **params)
        assert status == 400, params
        assert refused["error"]["code"] == "invalid_parameter_error", refused
        assert refused["error"]["param"] == next(iter(params)), refused


async def test_delete_then_not_found(compat: Compat, emulator_reset: Emulator) -> None:
    _, body = await compat.upload(b"{}\n", "batch")
    status, deleted = await compat.call("DELETE", f"/{body['id']}")
    assert status == 200
    assert deleted == {"object": "file", "deleted": True, "id": body["id"]}
    for method, path in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        status, answer = await compat.call(method, f"/{body['id']}{path}")
        assert status == 404
        assert answer["error"]["message"]
    async with compat.session.get(f"{emulator_reset.url}/_emulator/state") as response:
        state = await response.json()
    assert state["created"]["compat_files"] == 1
    assert state["live"]["compat_files"] == 0
