"""Stored responses, OpenAI-compatible: ``/compatible-mode/v1/responses`` (bailian-api.md section 6).

The emulator does not run a model: a response's output is derived deterministically from its input text, which
is enough for clients that store, retrieve, list input items of and delete responses.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from aiohttp import web

from .cursor import cursor_limit, cursor_page
from .errors import compat_error, native_error
from .state import STATE_KEY, EmulatorState

PREFIX = "/compatible-mode/v1/responses"
MAX_LIMIT = 100


class InvalidRequest(Exception):
    pass


@dataclass
class StoredResponse:
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    created_ms: int


class ResponseStore:
    def __init__(self) -> None:
        self.responses: dict[str, StoredResponse] = {}

    def clear(self) -> None:
        self.responses.clear()


STORE_KEY = web.AppKey("bailian_flow.emulator.responses", ResponseStore)


def _item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for part in content:
            if isinstance(part, str):
                parts.append({"type": "input_text", "text": part})
            elif isinstance(part, dict):
                parts.append(dict(part))
            else:
                raise InvalidRequest("message content parts must be objects or strings")
        return parts
    raise InvalidRequest("message content must be a string or a list of parts")


def input_items(raw: Any) -> list[dict[str, Any]]:
    """The request's ``input`` as stored items, each with an id and a status."""
    if isinstance(raw, str):
        if not raw:
            raise InvalidRequest("input must not be empty")
        raw = [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("input must be a non-empty string or list of items")
    items: list[dict[str, Any]] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidRequest("input items must be objects")
        kind = entry.get("type", "message")
        if kind == "message":
            role = entry.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(f"invalid message role: {role!r}")
            items.append(
                {
                    "type": "message",
                    "id": entry.get("id") or _item_id("msg"),
                    "role": role,
                    "status": "completed",
                    "content": _content_parts(entry.get("content")),
                }
            )
        else:
            items.append({"id": _item_id("item"), "status": "completed", **entry})
    return items


def _input_text(items: list[dict[str, Any]]) -> str:
    texts = [
        str(part.get("text", ""))
        for item in items
        if item.get("type") == "message" and item.get("role") == "user"
        for part in item.get("content", [])
        if isinstance(part, dict) and "text" in part
    ]
    return texts[-1] if texts else ""


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _response_body(request_body: dict[str, Any], items: list[dict[str, Any]], created: int) -> dict[str, Any]:
    prompt = _input_text(items)
    reply = f"[emulated] {prompt}" if prompt else "[emulated] ok"
    input_tokens = sum(_tokens(json.dumps(item.get("content", ""))) for item in items)
    output_tokens = _tokens(reply)
    return {
        "id": _item_id("resp"),
        "object": "response",
        "created_at": created,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request_body.get("instructions"),
        "max_output_tokens": request_body.get("max_output_tokens"),
        "metadata": request_body.get("metadata") or {},
        "model": request_body["model"],
        "output": [
            {
                "type": "message",
                "id": _item_id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply, "annotations": []}],
            }
        ],
        "parallel_tool_calls": bool(request_body.get("parallel_tool_calls", True)),
        "previous_response_id": request_body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": bool(request_body.get("store", True)),
        "temperature": request_body.get("temperature", 1.0),
        "text": request_body.get("text") or {"format": {"type": "text"}},
        "tool_choice": request_body.get("tool_choice", "auto"),
        "tools": request_body.get("tools") or [],
        "top_p": request_body.get("top_p", 1.0),
        "truncation": request_body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": request_body.get("user"),
    }


def _invalid(message: str, param: str | None = None) -> web.Response:
    return compat_error(400, "invalid_parameter_error", message, type_="invalid_request_error", param=param)


def _not_found(response_id: str) -> web.Response:
    # Shape as observed on the service: no code, no param, no request_id.
    message = f"Response with id '{response_id}' not found."
    return web.json_response({"error": {"message": message, "type": "InvalidParameter"}}, status=404)


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


async def create(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError as exc:
        return _invalid(f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _invalid("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _invalid("model is required", param="model")
    if body.get("stream"):
        return _invalid("stream is not supported by the emulator", param="stream")
    try:
        items = input_items(body.get("input"))
    except InvalidRequest as exc:
        return _invalid(str(exc), param="input")
    state = _state(request)
    now = state.clock.now()
    response = _response_body(body, items, int(now))
    if response["store"]:
        request.app[STORE_KEY].responses[response["id"]] = StoredResponse(response, items, int(now * 1000))
        state.count_created("responses")
    return web.json_response(response)


async def get_response(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    stored = request.app[STORE_KEY].responses.get(response_id)
    if stored is None:
        return _not_found(response_id)
    return web.json_response(stored.body)


async def delete_response(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    if request.app[STORE_KEY].responses.pop(response_id, None) is None:
        return _not_found(response_id)
    return web.json_response({"deleted": True, "id": response_id})


async def list_input_items(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    stored = request.app[STORE_KEY].responses.get(response_id)
    if stored is None:
        return native_error(404, "NotFound", f"Response with id '{response_id}' not found.")
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        return _invalid("order must be asc or desc", param="order")
    limit = cursor_limit(request, MAX_LIMIT)
    ordered = stored.input_items if order == "asc" else list(reversed(stored.input_items))
    data, cursor = cursor_page(ordered, itemgetter("id"), request.query.get("after"), limit, unknown_after=None)
    return web.json_response(
        {"created_at": stored.created_ms, "data": data, "id": response_id, "model": stored.body["model"], **cursor}
    )


def setup(app: web.Application) -> None:
    store = ResponseStore()
    app[STORE_KEY] = store
    state = app[STATE_KEY]
    state.register_live("responses", lambda: len(store.responses))
    state.add_reset_hook(store.clear)
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX + "/{response_id}", get_response)
    app.router.add_delete(PREFIX + "/{response_id}", delete_response)
    app.router.add_get(PREFIX + "/{response_id}/input_items", list_input_items)
