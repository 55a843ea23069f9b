"""The control API under ``/_emulator`` (no auth): state, reset, faults, scripts, clock."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .clock import Clock
from .common import ApiError
from .faults import FaultRules
from .state import SCRIPT_KINDS, STATE_KEY

routes = web.RouteTableDef()


class ScriptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    outcome: str = "FAILED"
    count: int = Field(default=1, ge=1)


class ClockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance: float = Field(ge=0)


Body = TypeVar("Body", bound=BaseModel)


async def _parse(request: web.Request, model: type[Body], what: str) -> Body:
    """The request body as ``model``; an empty body reads as ``{}``. Refused with a native 400."""
    raw = await request.read()
    try:
        return model.model_validate(json.loads(raw) if raw else {})
    except (ValueError, ValidationError) as exc:
        raise ApiError(400, "InvalidParameter", f"invalid {what}: {exc}") from None


def _clock_answer(clock: Clock) -> web.Response:
    return web.json_response({"now": clock.now(), "elapsed": clock.elapsed(), "scale": clock.scale})


@routes.get("/_emulator/state")
async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot())


@routes.post("/_emulator/reset")
async def reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"reset": True})


@routes.get("/_emulator/faults")
async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"rules": [rule.model_dump() for rule in request.app[STATE_KEY].faults]})


@routes.post("/_emulator/faults")
async def add_faults(request: web.Request) -> web.Response:
    rules = (await _parse(request, FaultRules, "fault rules")).rules
    state = request.app[STATE_KEY]
    state.faults.extend(rules)
    return web.json_response({"rules": [rule.model_dump() for rule in state.faults]})


@routes.delete("/_emulator/faults")
async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE_KEY].faults.clear()
    return web.json_response({"rules": []})


@routes.get("/_emulator/script")
async def get_scripts(request: web.Request) -> web.Response:
    return web.json_response({"scripts": request.app[STATE_KEY].scripts()})


@routes.post("/_emulator/script")
async def add_script(request: web.Request) -> web.Response:
    script = await _parse(request, ScriptRequest, "script")
    if script.kind not in SCRIPT_KINDS:
        message = f"unknown kind {script.kind!r}; expected one of {', '.join(SCRIPT_KINDS)}"
        raise ApiError(400, "InvalidParameter", message)
    state = request.app[STATE_KEY]
    state.script(script.kind, script.outcome.upper(), script.count)
    return web.json_response({"scripts": state.scripts()})


@routes.get("/_emulator/clock")
async def get_clock(request: web.Request) -> web.Response:
    return _clock_answer(request.app[STATE_KEY].clock)


@routes.post("/_emulator/clock")
async def advance_clock(request: web.Request) -> web.Response:
    body = await _parse(request, ClockRequest, "clock request")
    clock = request.app[STATE_KEY].clock
    clock.advance(body.advance)
    return _clock_answer(clock)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
