"""The webhook function's REST API over runs, and inbound callbacks: the door (routes, auth, input bounds).

What each route does to runs is in `api_runs`.

Authenticated with `BAILIAN_FLOW_API_TOKEN` as a bearer token (compared in constant time). Without a configured
token every route but /health answers 503: an API left open by a missing setting is worse than one that is off.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bailian_flow.pipeline.protocol import inputs
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.rest import page
from bailian_flow.pipeline.rest.api_runs import (
    HttpError,
    batch_callback,
    callback,
    cancel_run,
    list_runs,
    retry_run,
    scale_run,
    show_run,
    start_run,
    teardown_run,
)
from bailian_flow.store import StoreError

log = logging.getLogger("bailian_flow.pipeline")


@dataclass(frozen=True)
class Request:
    """A request that passed the door's checks: path parameters validated, body a bounded JSON object."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]


Handler = Callable[[Flow, Request], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class Route:
    """`/runs/{run_id}/cancel`: `{run_id}` must be a run id (else 400), any other `{name}` a short plain segment."""

    method: str
    pattern: str
    handler: Handler
    authenticated: bool = True
    reads_body: bool = True

    def match(self, segments: list[str]) -> dict[str, str] | None:
        parts = [part for part in self.pattern.split("/") if part]
        if len(parts) != len(segments):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "isBase64Encoded": False,
        "body": json.dumps(body, ensure_ascii=False),
    }


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return _response(status, {"error": {"code": code, "message": message}}, headers)


def _authorized(flow: Flow, authorization: str | None) -> None:
    token = flow.settings.api_token
    if token is None:
        raise HttpError(503, "NotConfigured", "the API token (BAILIAN_FLOW_API_TOKEN) is not configured")
    expected = f"Bearer {token.get_secret_value()}".encode()
    if not authorization or not hmac.compare_digest(authorization.encode("utf-8", "replace"), expected):
        raise HttpError(401, "Unauthorized", "missing or wrong bearer token")


async def handle(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.fc import InvalidEvent, parse_http_event

    if len(raw) > inputs.MAX_EVENT_BYTES:
        return _error(413, "PayloadTooLarge", f"request is larger than {inputs.MAX_BODY_BYTES} bytes")
    try:
        event = parse_http_event(raw)
        if page.wanted(event):
            return page.page_response()
        return await _dispatch(flow, event.method.upper(), event.path or "/", event)
    except InvalidEvent as exc:
        return _error(400, "InvalidEvent", str(exc))
    except HttpError as exc:
        return _error(exc.status, exc.code, exc.message)
    except inputs.InputError as exc:
        return _error(exc.status, exc.code, exc.message)
    except StoreError as exc:
        log.warning("API: the bucket failed: %s", exc)
        return _error(503, "StoreUnavailable", "the bucket is unavailable; try again")
    except Exception:
        # Last resort, never reached by anything a client sends (tests/pipeline/test_hostile_api.py): no
        # traceback, no token, nothing of the request in the answer.
        log.exception("API: unexpected failure")
        return _error(500, "InternalError", "internal error; see the function's log")


async def _dispatch(flow: Flow, method: str, path: str, event: Any) -> dict[str, Any]:
    if len(path) > inputs.MAX_PATH_CHARS:
        raise HttpError(414, "URITooLong", f"path is longer than {inputs.MAX_PATH_CHARS} characters")
    # A trailing slash is the same route; an empty or dot segment anywhere else matches none.
    segments = path.removesuffix("/").split("/")[1:] if path.startswith("/") else ["", path]
    matched = [(route, params) for route in ROUTES if (params := route.match(segments)) is not None]
    if not matched:
        raise HttpError(404, "NotFound", "no such route")
    chosen = next(((route, params) for route, params in matched if route.method == method), None)
    if chosen is None:
        allowed = ", ".join(sorted({route.method for route, _ in matched}))
        return _error(405, "MethodNotAllowed", f"{method} is not allowed here; use {allowed}", {"Allow": allowed})
    route, params = chosen
    if route.authenticated:
        _authorized(flow, event.header("authorization"))
    for name, value in params.items():
        params[name] = inputs.run_id(value) if name == "run_id" else inputs.plain_id(value, field=name)
    body = inputs.json_object(event.decoded_body()) if method == "POST" and route.reads_body else {}
    status, payload = await route.handler(flow, Request(method, params, event.query, body))
    return _response(status, payload)


async def _health(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, {"status": "ok"}


async def _list(flow: Flow, request: Request) -> tuple[int, Any]:
    runs, next_cursor = await list_runs(flow, request.query)
    return 200, {"runs": runs, "next": next_cursor}


async def _start(flow: Flow, request: Request) -> tuple[int, Any]:
    return await start_run(flow, request.body)


async def _show(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, await show_run(flow, request.params["run_id"])


async def _cancel(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, {"run": await cancel_run(flow, request.params["run_id"])}


async def _retry(flow: Flow, request: Request) -> tuple[int, Any]:
    return 202, {"run": await retry_run(flow, request.params["run_id"], request.body.get("settings"))}


async def _teardown(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, {"run": await teardown_run(flow, request.params["run_id"])}


async def _scale(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, {"run": await scale_run(flow, request.params["run_id"], request.body)}


async def _batch_callback(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, await batch_callback(flow, request.params["run_id"], request.params["token"])


async def _callback(flow: Flow, request: Request) -> tuple[int, Any]:
    return 200, await callback(flow, request.params["kind"], request.body)


# One line per route; each inherits the checks above (auth unless said otherwise, parameters, body bounds).
ROUTES: list[Route] = [
    Route("GET", "/", _health, authenticated=False),
    Route("GET", "/health", _health, authenticated=False),
    Route("GET", "/runs", _list),
    Route("POST", "/runs", _start),
    Route("GET", "/runs/{run_id}", _show),
    Route("POST", "/runs/{run_id}/cancel", _cancel),
    Route("POST", "/runs/{run_id}/retry", _retry),
    Route("POST", "/runs/{run_id}/teardown", _teardown),
    Route("POST", "/runs/{run_id}/scale", _scale),
    Route("POST", "/callbacks/{kind}", _callback),
    # Bailian calls this without our token: the path's HMAC is the credential, the body is ignored.
    Route("POST", "/callbacks/batch/{run_id}/{token}", _batch_callback, authenticated=False, reads_body=False),
]
