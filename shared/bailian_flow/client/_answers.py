"""What the request core hands around: an operation's description and a successful answer, and the parsing
of the three error body shapes (native JSON, compatible-mode JSON, OSS XML)."""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import errors
from ._config import Family, Limiter

__all__ = ["Answer", "Operation", "error_fields", "header_request_id"]

_REQUEST_ID_HEADERS = ("x-request-id", "x-dashscope-request-id", "request-id", "x-oss-request-id")
_XML_FIELD = re.compile(r"<(Code|Message|RequestId)>(.*?)</\1>", re.S)


@dataclass(frozen=True)
class Operation:
    """One API operation and what is safe to do with it (see `_retry` for the rules)."""

    name: str
    method: str
    family: Family
    limiter: Limiter
    idempotent: bool
    # A DELETE that finds nothing after an earlier attempt failed ambiguously: that earlier attempt did it.
    absent_means_done: bool = False


@dataclass
class Answer:
    """A successful answer. `response` is set (unread, still open) only for streamed calls."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    response: aiohttp.ClientResponse | None = field(default=None, repr=False)
    # Masks the API key in any of this answer's text quoted into an error (the client's `scrub`).
    scrub: Callable[[str], str] = field(default=str, repr=False)

    @property
    def request_id(self) -> str | None:
        return header_request_id(self.headers)

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return jsonlib.loads(self.body)
        except ValueError as exc:
            raise errors.APIResponseValidationError(
                self.scrub(f"answer is not JSON: {self.body[:200]!r}"), request_id=self.request_id
            ) from exc


def header_request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        if value := headers.get(name):
            return value
    return None


def error_fields(body: bytes) -> tuple[str | None, str, str | None]:
    """(service code, message, request id) from an error body, whichever of the API's shapes it has."""
    try:
        data = jsonlib.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict):  # compatible mode: {"error": {"message","type","code","param"}}
            code = inner.get("code") or inner.get("type")
            message = inner.get("message")
        else:  # native: {"request_id","code","message"}
            code = data.get("code")
            message = data.get("message")
        request_id = data.get("request_id") or data.get("requestId")
        return (
            str(code) if code is not None else None,
            str(message or ""),
            str(request_id) if request_id else None,
        )
    if body.lstrip().startswith(b"<"):  # OSS answers in XML
        fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
        return fields.get("Code"), fields.get("Message", ""), fields.get("RequestId")
    return None, body[:500].decode("utf-8", "replace"), None
