"""Helpers shared by the native resource modules: timestamps, bodies, paging, ids."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Sequence
from typing import Any, TypeVar

from aiohttp import web

from .errors import ServiceError, compat_error, native_error, new_request_id

# The service reports wall-clock times in Beijing time without an offset.
BEIJING = dt.timezone(dt.timedelta(hours=8))

DEFAULT_WORKSPACE = "llm-emulator"

T = TypeVar("T")


class ApiError(ServiceError):
    """Raised by handlers and helpers; rendered as the native error body."""

    def response(self) -> web.Response:
        return native_error(self.status, self.code, self.message)


class CompatError(ApiError):
    """Rendered as the compatible-mode error body."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(status, code, message)
        self.param = param

    def response(self) -> web.Response:
        return compat_error(self.status, self.code, self.message, param=self.param)


def beijing(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, BEIJING)


def format_space(epoch: float) -> str:
    """``2024-10-29 16:53:53`` (fine-tunes)."""
    return beijing(epoch).strftime("%Y-%m-%d %H:%M:%S")


def format_iso_centis(epoch: float) -> str:
    """``2025-06-17T11:00:38.68`` (deployments)."""
    moment = beijing(epoch)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 10000:02d}"


def format_iso_offset(epoch: float) -> str:
    """``2024-01-01T12:00:00.000+00:00`` (custom model import)."""
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def workspace_id(request: web.Request) -> str:
    """The workspace the request names in ``X-DashScope-WorkSpace``, else the emulator's default one."""
    return request.headers.get("X-DashScope-WorkSpace") or DEFAULT_WORKSPACE


def hex4() -> str:
    return secrets.token_hex(2)


def ok(output: Any, status: int = 200) -> web.Response:
    return web.json_response({"request_id": new_request_id(), "output": output}, status=status)


async def json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(400, "InvalidParameter", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidParameter", "Request body must be a JSON object.")
    return body


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "InvalidParameter", f"{name} must be an integer, got {raw!r}.") from None
    if not low <= value <= high:
        raise ApiError(400, "InvalidParameter", f"{name} must be between {low} and {high}, got {value}.")
    return value


def paged(request: web.Request, items: Sequence[T], default_size: int, max_size: int) -> tuple[dict[str, int], list[T]]:
    """The ``page_no`` / ``page_size`` page of ``items``, and the ``page_no``, ``page_size``, ``total`` fields."""
    page_no = int_param(request, "page_no", 1, 1, 1_000_000)
    page_size = int_param(request, "page_size", default_size, 1, max_size)
    start = (page_no - 1) * page_size
    fields = {"page_no": page_no, "page_size": page_size, "total": len(items)}
    return fields, list(items[start : start + page_size])


@web.middleware
async def api_error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except ApiError as exc:
        return exc.response()
    return response
