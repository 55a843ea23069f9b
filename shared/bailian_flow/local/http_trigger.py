"""The HTTP trigger, locally: functions-framework serves the request, this module speaks FC's event format.

FC3 built-in runtimes hand an HTTP-triggered handler a JSON event (`version` v1, URL-encoded `rawPath`, body
base64-encoded when binary, repeated headers and query keys comma-joined, `requestContext.http`) and expect
`{"statusCode", "headers", "isBase64Encoded", "body"}` back. functions-framework gives us a Flask app bound to
one target function; the target (see `ff_shim`) finds the FC handler in the app's config.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bailian_flow.local.runner import HandlerError, LocalFunction
from bailian_flow.local.spec import HttpTrigger

if TYPE_CHECKING:
    import flask
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.serving import BaseWSGIServer

CONFIG_KEY = "BAILIAN_FLOW_FC_TARGET"
SHIM_SOURCE = Path(__file__).with_name("ff_shim") / "bailian_flow_fc_http.py"
SHIM_TARGET = "fc_http"

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


def _is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        not media
        or media.startswith(_TEXT_TYPES)
        or media.endswith(("+json", "+xml"))
        or media == "application/javascript"
    )


def request_to_event(request: flask.Request, trigger_name: str, account_id: str) -> dict[str, Any]:
    """Build FC's HTTP trigger event from a Flask request."""
    body_bytes = request.get_data(cache=False)
    body: str
    is_base64 = False
    try:
        if not _is_text(request.content_type or ""):
            raise UnicodeDecodeError("utf-8", b"", 0, 1, "binary content type")
        body = body_bytes.decode("utf-8")
    except UnicodeDecodeError:
        body, is_base64 = base64.b64encode(body_bytes).decode("ascii"), True
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    raw_path = raw_uri.split("?", 1)[0] if raw_uri else quote(request.path)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query = {key: ",".join(values) for key, values in request.args.lists()}
    now = datetime.now(timezone.utc)
    host = request.host
    return {
        "version": "v1",
        "rawPath": raw_path,
        "body": body,
        "isBase64Encoded": is_base64,
        "headers": headers,
        "queryParameters": query,
        "requestContext": {
            "accountId": account_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timeEpoch": str(int(now.timestamp() * 1000)),
            "triggerId": trigger_name,
        },
    }


def result_to_response(result: Any) -> flask.Response:
    """Turn the handler's return value into a Flask response the way FC does."""
    import flask

    if isinstance(result, dict) and "statusCode" in result:
        raw_body = result.get("body")
        data: bytes
        if raw_body is None:
            data = b""
        elif result.get("isBase64Encoded"):
            data = base64.b64decode(str(raw_body))
        elif isinstance(raw_body, str):
            data = raw_body.encode("utf-8")
        else:
            data = json.dumps(raw_body).encode("utf-8")
        response = flask.Response(data, status=int(result["statusCode"]))
        response.headers.pop("Content-Type", None)
        for name, value in (result.get("headers") or {}).items():
            for item in value if isinstance(value, list) else [value]:
                response.headers.add(name, str(item))
        return response
    # Anything else is the body itself.
    if isinstance(result, bytes):
        return flask.Response(result, status=200)
    if isinstance(result, str):
        return flask.Response(result, status=200, content_type="text/plain; charset=utf-8")
    return flask.Response(json.dumps(result), status=200, content_type="application/json")


def error_response(status: int, body: dict[str, Any], error_type: str | None = None) -> flask.Response:
    import flask

    response = flask.Response(json.dumps(body), status=status, content_type="application/json")
    if error_type:
        response.headers["x-fc-error-type"] = error_type
    return response


class FcHttpTarget:
    """What the functions-framework target calls: one FC function behind one HTTP trigger."""

    def __init__(self, function: LocalFunction, trigger: HttpTrigger, account_id: str) -> None:
        self.function = function
        self.trigger = trigger
        self.account_id = account_id

    def __call__(self, request: flask.Request) -> flask.Response:
        if self.trigger.methods and request.method not in self.trigger.methods:
            return error_response(
                405, {"Code": "MethodNotAllowed", "Message": f"method {request.method} is not allowed"}
            )
        event = request_to_event(request, self.trigger.name, self.account_id)
        try:
            result = self.function.invoke(json.dumps(event).encode("utf-8"))
        except HandlerError as exc:
            return error_response(500, exc.body(), "UnhandledInvocationError")
        return result_to_response(result)


# HTTP status -> the API's error code, for the errors the HTTP parser answers before any handler runs.
PARSER_ERROR_CODES = {
    400: "BadRequest",
    408: "RequestTimeout",
    413: "PayloadTooLarge",
    414: "URITooLong",
    431: "RequestHeaderFieldsTooLarge",
    501: "NotImplemented",
    505: "HTTPVersionNotSupported",
}
MAX_ERROR_MESSAGE = 200
MAX_BODY_BYTES = 32 << 20  # the parser's messages quote the request line: never echo much of it back


def error_body(status: int, message: str) -> bytes:
    """The API's error shape, `{"error": {"code", "message"}}`, for answers the HTTP layer gives itself."""
    code = PARSER_ERROR_CODES.get(status, "BadRequest" if status < 500 else "InternalError")
    text = message if len(message) <= MAX_ERROR_MESSAGE else message[: MAX_ERROR_MESSAGE - 1] + "…"
    return json.dumps({"error": {"code": code, "message": text}}).encode()


def _request_handler() -> type:
    """werkzeug's request handler, answering the HTTP parser's own errors (header line or request line too long,
    too many headers, a malformed request line, an unsupported version) in the API's JSON instead of
    http.server's HTML page."""
    from werkzeug.serving import WSGIRequestHandler

    class JsonErrorRequestHandler(WSGIRequestHandler):
        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            try:
                short, long = self.responses[code]
            except KeyError:
                short, long = "Error", ""
            self.log_error("code %d, message %s", code, message or short)
            if self.request_version == "HTTP/0.9":
                # An unparseable request line leaves the version at 0.9, which answers without a status line.
                self.request_version = "HTTP/1.1"
            body = error_body(code, f"{message or short}: {explain or long}".rstrip(": "))
            self.send_response(code, message or short)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)

    return JsonErrorRequestHandler


class _WholeBody:
    """Bounds the request body as FC does (32 MB for a synchronous invocation: "Can I modify the limit on the body
    size of an HTTP request?", https://help.aliyun.com/en/functioncompute/http-body-be-modified), and reads a
    chunked one before the app does, so a malformed one is a JSON 400 here; inside Flask it surfaces as an OSError
    from `get_data`, answered with an HTML 500 (and read again, and raised again, by functions-framework's
    after-request hook)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        declared = str(environ.get("CONTENT_LENGTH") or "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _refuse(start_response, 413, f"the request body is larger than FC's {MAX_BODY_BYTES >> 20} MB")
        if environ.get("wsgi.input_terminated"):
            try:
                body = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
            except (OSError, ValueError) as exc:
                return _refuse(start_response, 400, f"malformed chunked request body: {exc}")
            if len(body) > MAX_BODY_BYTES:
                return _refuse(start_response, 413, f"the request body is larger than FC's {MAX_BODY_BYTES >> 20} MB")
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input_terminated"] = False
        return self.app(environ, start_response)


def _refuse(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    from http import HTTPStatus

    data = error_body(status, message)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Connection", "close")]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [data]


class HttpTriggerServer:
    """functions-framework's Flask app on a loopback port, served by werkzeug on a thread."""

    def __init__(self, target: FcHttpTarget, host: str = "127.0.0.1", port: int = 0) -> None:
        import functions_framework
        from werkzeug.serving import make_server

        create_app: Callable[..., flask.Flask] = functions_framework.create_app  # untyped upstream
        app = create_app(SHIM_TARGET, str(SHIM_SOURCE), "http")
        app.config[CONFIG_KEY] = target
        self._server: BaseWSGIServer = make_server(
            host, port, _WholeBody(app), threaded=True, request_handler=_request_handler()
        )
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fc-http-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
