"""Error bodies of the two API families (bailian-api.md section 8)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

NATIVE_PREFIX = "/api/v1"
COMPATIBLE_PREFIX = "/compatible-mode/v1"


class ServiceError(Exception):
    """A refusal with an HTTP status, a service error code and a message; subclasses pick the body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def new_request_id() -> str:
    return str(uuid.uuid4())


def native_error(status: int, code: str, message: str) -> web.Response:
    body = {"request_id": new_request_id(), "code": code, "message": message}
    return web.json_response(body, status=status)


def compat_error(
    status: int,
    code: str,
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "error": {"message": message, "type": type_, "param": param, "code": code},
        "request_id": new_request_id(),
    }
    return web.json_response(body, status=status)


def new_oss_request_id() -> str:
    """OSS request ids are 24 upper-case hex digits."""
    return uuid.uuid4().hex[:24].upper()


def is_compatible_path(path: str) -> bool:
    return path == COMPATIBLE_PREFIX or path.startswith(COMPATIBLE_PREFIX + "/")


def is_native_path(path: str) -> bool:
    return path == NATIVE_PREFIX or path.startswith(NATIVE_PREFIX + "/")


def error_for_path(path: str, status: int, code: str, message: str) -> web.Response:
    """The error body of the API family the path belongs to: native, compatible-mode, else OSS (XML)."""
    if is_compatible_path(path):
        return compat_error(status, code, message)
    if is_native_path(path) or path.startswith("/_emulator"):
        return native_error(status, code, message)
    return oss_error(status, code, message)


def oss_error(status: int, code: str, message: str) -> web.Response:
    """OSS answers errors in XML; the OSS SDK reads ``Code`` and ``Message`` from it."""
    request_id = new_oss_request_id()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>127.0.0.1</HostId></Error>"
    )
    return web.Response(
        status=status, text=body, content_type="application/xml", headers={"x-oss-request-id": request_id}
    )


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
