"""HTTP trigger events (FC3 built-in runtimes) and the response dict FC expects back."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic import Field

from bailian_flow.fc._base import EventModel, InvalidEvent, load_event_object, validate_event


class HttpDetail(EventModel):
    method: str = Field(min_length=1)
    path: str = ""
    protocol: str = ""
    source_ip: str = Field("", alias="sourceIp")
    user_agent: str = Field("", alias="userAgent")


class HttpRequestContext(EventModel):
    http: HttpDetail
    account_id: str = Field("", alias="accountId")
    domain_name: str = Field("", alias="domainName")
    domain_prefix: str = Field("", alias="domainPrefix")
    request_id: str = Field("", alias="requestId")
    time: str = ""
    time_epoch: str = Field("", alias="timeEpoch")
    trigger_id: str = Field("", alias="triggerId")


class HttpEvent(EventModel):
    version: str = "v1"
    raw_path: str = Field("", alias="rawPath")
    body: str | None = None
    is_base64_encoded: bool = Field(False, alias="isBase64Encoded")
    # Repeated headers and query parameters arrive comma-joined in one value.
    headers: dict[str, str] = Field(default_factory=dict)
    query_parameters: dict[str, str] = Field(default_factory=dict, alias="queryParameters")
    request_context: HttpRequestContext = Field(alias="requestContext")

    @property
    def method(self) -> str:
        return self.request_context.http.method.upper()

    @property
    def path(self) -> str:
        """The decoded path (`requestContext.http.path`; `rawPath` is still URL-encoded)."""
        return self.request_context.http.path or unquote(self.raw_path) or "/"

    @property
    def query(self) -> dict[str, str]:
        return dict(self.query_parameters)

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header by case-insensitive name."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default

    def decoded_body(self) -> bytes:
        if not self.body:
            return b""
        if not self.is_base64_encoded:
            return self.body.encode("utf-8")
        try:
            return base64.b64decode(self.body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidEvent("body: isBase64Encoded is true but the body is not base64") from None

    def json_body(self) -> Any:
        """The body parsed as JSON (named so as not to shadow pydantic's own `BaseModel.json`)."""
        raw = self.decoded_body()
        if not raw:
            raise InvalidEvent("body: empty, expected JSON")
        try:
            return json.loads(raw)
        except UnicodeDecodeError:
            raise InvalidEvent("body: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise InvalidEvent(f"body: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def parse_http_event(raw: bytes | bytearray | str | dict[str, Any]) -> HttpEvent:
    return validate_event(HttpEvent, load_event_object(raw, "HTTP"), "HTTP")


@dataclass(frozen=True)
class HttpResponse:
    """Builds the dict an FC HTTP-trigger handler returns."""

    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = ""

    @classmethod
    def json(cls, payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> HttpResponse:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return cls(status_code, {"Content-Type": "application/json", **(headers or {})}, text)

    @classmethod
    def text(cls, text: str, status_code: int = 200, headers: Mapping[str, str] | None = None) -> HttpResponse:
        return cls(status_code, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}, text)

    @classmethod
    def error(cls, status_code: int, code: str, message: str) -> HttpResponse:
        return cls.json({"code": code, "message": message}, status_code)

    def to_fc(self) -> dict[str, Any]:
        if isinstance(self.body, bytes):
            try:
                body, encoded = self.body.decode("utf-8"), False
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(self.body).decode("ascii"), True
        else:
            body, encoded = self.body, False
        return {
            "statusCode": self.status_code,
            "headers": dict(self.headers),
            "isBase64Encoded": encoded,
            "body": body,
        }
