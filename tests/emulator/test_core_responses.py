"""Stored responses on the emulator: exact shapes of create, get, delete, input_items and their not-founds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from core_api import Api
from emulator_support import Emulator

PATH = "/compatible-mode/v1/responses"


@pytest.fixture
async def api(emulator_reset: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, emulator_reset.url, emulator_reset.api_key)


async def create(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("model", "qwen-plus")
    status, answer = await api.call("POST", PATH, json=body)
    assert status == 200, answer
    result: dict[str, Any] = answer
    return result


async def test_create_is_deterministic_in_the_input(api: Api) -> None:
    first = await create(api, input="same text", store=True)
    second = await create(api, input="same text", store=True)
    assert first["id"] != second["id"]
    assert first["object"] == "response" and first["status"] == "completed"
    assert first["output"][0]["content"][0]["text"] == second["output"][0]["content"][0]["text"]
    assert "same text" in first["output"][0]["content"][0]["text"]
    assert isinstance(first["created_at"], int)
    state = await api.state()
    assert state["created"]["responses"] == 2 and state["live"]["responses"] == 2


async def test_store_false_is_returned_but_not_kept(api: Api) -> None:
    created = await create(api, input="x", store=False)
    assert created["store"] is False
    status, _ = await api.call("GET", f"{PATH}/{created['id']}")
    assert status == 404
    assert (await api.state())["live"]["responses"] == 0


async def test_get_delete_and_not_found_shapes(api: Api) -> None:
    created = await create(api, input="keep me")
    status, fetched = await api.call("GET", f"{PATH}/{created['id']}")
    assert status == 200 and fetched == created
    status, deleted = await api.call("DELETE", f"{PATH}/{created['id']}")
    assert (status, deleted) == (200, {"deleted": True, "id": created["id"]})
    for method in ("GET", "DELETE"):
        status, body = await api.call(method, f"{PATH}/{created['id']}")
        assert status == 404
        assert body == {
            "error": {"message": f"Response with id '{created['id']}' not found.", "type": "InvalidParameter"}
        }
    status, body = await api.call("GET", f"{PATH}/{created['id']}/input_items")
    assert status == 404
    assert set(body) == {"request_id", "code", "message"}


async def test_input_items_shape_order_and_cursor(api: Api) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"role": "user", "content": "second"},
    ]
    created = await create(api, input=messages)
    status, page = await api.call("GET", f"{PATH}/{created['id']}/input_items")
    assert status == 200
    assert set(page) == {"created_at", "data", "first_id", "has_more", "id", "last_id", "model"}
    assert page["id"] == created["id"] and page["model"] == "qwen-plus"
    assert page["created_at"] // 1000 == created["created_at"]  # milliseconds here
    assert [item["content"][0]["text"] for item in page["data"]] == ["second", "first", "be brief"]
    item = page["data"][0]
    assert (item["type"], item["role"], item["status"]) == ("message", "user", "completed")
    assert item["content"][0]["type"] == "input_text" and item["id"].startswith("msg_")

    _, first = await api.call("GET", f"{PATH}/{created['id']}/input_items", params={"order": "asc", "limit": 2})
    assert [i["content"][0]["text"] for i in first["data"]] == ["be brief", "first"]
    assert first["has_more"] is True and first["last_id"] == first["data"][-1]["id"]
    _, rest = await api.call(
        "GET", f"{PATH}/{created['id']}/input_items", params={"order": "asc", "after": first["last_id"]}
    )
    assert [i["content"][0]["text"] for i in rest["data"]] == ["second"]
    assert rest["has_more"] is False
    for params in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}):
        status, body = await api.call("GET", f"{PATH}/{created['id']}/input_items", params=params)
        assert status == 400 and body["error"]["code"] == "invalid_parameter_error", params


@pytest.mark.parametrize(
    "body",
    [{"input": "x"}, {"model": "qwen-plus"}, {"model": "qwen-plus", "input": ""}, {"model": "qwen-plus", "input": [1]}],
)
async def test_invalid_create_is_a_compatible_400(api: Api, body: dict[str, Any]) -> None:
    status, answer = await api.call("POST", PATH, json=body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error" and answer["request_id"]
