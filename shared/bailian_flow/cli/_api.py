"""The REST API of the webhook function as the CLI sees it: blocking, small, and every failure one clear line."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from bailian_flow.cli._app import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_UNREACHABLE, CliError
from bailian_flow.local.profile import Profile, load_profile, profile_path

TIMEOUT = 30.0
MAX_ANSWER = 16 << 20  # a runs page is a few hundred KiB at most; anything larger is not our API


def check_url(url: str, variable: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"{variable} must be an http:// or https:// URL, got {url!r}", EXIT_UNREACHABLE)
    return url.rstrip("/")


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url = check_url(url, "the API URL (BAILIAN_FLOW_API_URL)")
        self._token = token

    @classmethod
    def from_profile(cls) -> Api:
        profile, _ = load_profile()
        return cls.for_profile(profile)

    @classmethod
    def for_profile(cls, profile: Profile) -> Api:
        if not profile.api_url:
            raise CliError(
                "no API configured: start `bailian-flow dev` (it writes "
                f"{profile_path()}) or set BAILIAN_FLOW_API_URL and BAILIAN_FLOW_API_TOKEN",
                EXIT_UNREACHABLE,
            )
        if not profile.api_token:
            raise CliError("no API token: set BAILIAN_FLOW_API_TOKEN", EXIT_UNREACHABLE)
        return cls(profile.api_url, profile.api_token)

    def get(self, path: str, **query: str | int | None) -> Any:
        params = {k: str(v) for k, v in query.items() if v is not None}
        suffix = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self._call("GET", path + suffix, None)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, body or {})

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return _decode(response.read(MAX_ANSWER + 1), method, path)
        except urllib.error.HTTPError as error:
            raise _http_error(error, method, path) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(
                f"cannot reach the API at {self.url} ({reason}); is `bailian-flow dev` running, "
                "or BAILIAN_FLOW_API_URL right?",
                EXIT_UNREACHABLE,
            ) from None


def _decode(raw: bytes, method: str, path: str) -> Any:
    if len(raw) > MAX_ANSWER:
        raise CliError(f"{method} {path}: the answer is larger than {MAX_ANSWER >> 20} MiB", EXIT_UNREACHABLE)
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise CliError(f"{method} {path}: the answer is not JSON; is the URL the webhook function's?", 4) from None


def _http_error(error: urllib.error.HTTPError, method: str, path: str) -> CliError:
    try:
        detail = json.loads(error.read(MAX_ANSWER)).get("error") or {}
        message = str(detail.get("message") or error.reason)
    except (ValueError, AttributeError, OSError):
        message = str(error.reason)
    status = error.code
    if status == 401:
        return CliError(f"the API refused the token ({message}); check BAILIAN_FLOW_API_TOKEN", EXIT_UNREACHABLE)
    if status == 404:
        return CliError(message, EXIT_NOT_FOUND)
    if status in (400, 409, 413, 422):
        return CliError(message, EXIT_INVALID)
    return CliError(f"{method} {path} answered {status}: {message}", EXIT_UNREACHABLE)
