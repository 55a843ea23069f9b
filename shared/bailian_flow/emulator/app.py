"""The emulator's aiohttp application: middlewares, the control API and every resource module."""

from __future__ import annotations

import importlib
import logging
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from . import control
from .common import api_error_middleware
from .errors import (
    compat_error,
    error_for_path,
    is_compatible_path,
    is_native_path,
    native_error,
    new_request_id,
)
from .faults import fault_middleware
from .state import STATE_KEY, EmulatorState

log = logging.getLogger(__name__)

# Registration order is routing order: the OSS subset serves the catch-all `/{bucket}/{key}` and goes last.
RESOURCE_MODULES = (
    "quotas",
    "fine_tunes",
    "deployments",
    "custom_models",
    "responses",
    "files",
    "compat_files",
    "batches",
    "uploads",
    "oss",
)

# Uploads are streamed by their handlers; this only bounds handlers that read a whole body.
CLIENT_MAX_SIZE = 2 << 30


def _is_router_default(exc: web.HTTPException) -> bool:
    """True for aiohttp's own bare 404/405 (no route), as opposed to an answer a handler built."""
    return exc.status in (404, 405) and exc.text == f"{exc.status}: {exc.reason}"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        path = request.path
        if _is_router_default(exc) and (is_native_path(path) or is_compatible_path(path)):
            # Unknown API routes answer in the API family's error shape, like the service.
            code = "NotFound" if exc.status == 404 else "UnsupportedOperation"
            message = f"{request.method} {path} is not supported."
            response = error_for_path(path, exc.status, code, message)
        else:
            response = exc
    if not response.prepared and "X-Request-Id" not in response.headers:
        response.headers["X-Request-Id"] = new_request_id()
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    compatible = is_compatible_path(path)
    if not (compatible or is_native_path(path)):
        return await handler(request)
    expected = request.app[STATE_KEY].api_key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    valid = scheme.lower() == "bearer" and bool(token)
    if valid and expected is not None:
        valid = secrets.compare_digest(token.encode(), expected.encode())
    if valid:
        return await handler(request)
    # Never echo the presented key back.
    if compatible:
        return compat_error(401, "invalid_api_key", "Incorrect API key provided.", type_="invalid_request_error")
    return native_error(401, "InvalidApiKey", "Invalid API-key provided.")


def _setup_resource_modules(app: web.Application) -> None:
    for name in RESOURCE_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            log.warning("emulator module %s is missing; its routes are not served", name)
            continue
        module.setup(app)


def create_app(state: EmulatorState) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, fault_middleware, auth_middleware, api_error_middleware],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app[STATE_KEY] = state
    control.setup(app)
    _setup_resource_modules(app)
    return app
