"""Fault injection: rules posted to ``/_emulator/faults`` that fail, delay or drop matching requests."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import random
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field

from .errors import error_for_path
from .state import STATE_KEY, EmulatorState

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator"


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    path: str = "*"
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    times: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=100, le=599)
    code: str = "ServiceUnavailable"
    message: str = "Injected fault."
    retry_after: float | None = Field(default=None, ge=0)
    latency: float = Field(default=0.0, ge=0)
    drop: Literal["before", "after"] | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


class FaultRules(BaseModel):
    rules: list[FaultRule]


def pick_rule(state: EmulatorState, method: str, path: str) -> FaultRule | None:
    """The first matching rule that fires; a rule counts a hit only when it fires."""
    for rule in state.faults:
        if not rule.matches(method, path):
            continue
        if rule.probability < 1.0 and random.random() >= rule.probability:
            continue
        rule.hits += 1
        return rule
    return None


def _drop_connection(request: web.Request) -> web.Response:
    """Close the socket; aiohttp then fails to write the returned response and gives up quietly."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=204)


def _retry_after_header(seconds: float) -> str:
    # Retry-After is an integer number of seconds; round up so a client never retries early.
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(CONTROL_PREFIX):
        return await handler(request)
    rule = pick_rule(request.app[STATE_KEY], request.method, path)
    if rule is None:
        return await handler(request)
    log.info("fault %s %s: %s", request.method, path, rule.model_dump(exclude_defaults=True))
    if rule.latency:
        await asyncio.sleep(rule.latency)
    if rule.drop == "before":
        return _drop_connection(request)
    if rule.drop == "after":
        # The request is processed; its answer, error or not, is lost either way.
        with contextlib.suppress(web.HTTPException):
            await handler(request)
        return _drop_connection(request)
    if rule.status is not None:
        response = error_for_path(path, rule.status, rule.code, rule.message)
        if rule.retry_after is not None:
            response.headers["Retry-After"] = _retry_after_header(rule.retry_after)
            response.headers["retry-after-ms"] = str(int(rule.retry_after * 1000))
        return response
    return await handler(request)
