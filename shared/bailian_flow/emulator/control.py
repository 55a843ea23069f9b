"""The control API under ``/_emulator`` (no auth): state, reset, faults, scripts, clock."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import native_error
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


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    return json.loads(raw)


def _invalid(message: str) -> web.Response:
    return native_error(400, "InvalidParameter", message)


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
    try:
        rules = FaultRules.model_validate(await _json_body(request)).rules
    except (ValueError, ValidationError) as exc:
        return _invalid(f"invalid fault rules: {exc}")
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
    try:
        script = ScriptRequest.model_validate(await _json_body(request))
    except (ValueError, ValidationError) as exc:
        return _invalid(f"invalid script: {exc}")
    if script.kind not in SCRIPT_KINDS:
        return _invalid(f"unknown kind {script.kind!r}; expected one of {', '.join(SCRIPT_KINDS)}")
    state = request.app[STATE_KEY]
    state.script(script.kind, script.outcome.upper(), script.count)
    return web.json_response({"scripts": state.scripts()})


@routes.get("/_emulator/clock")
async def get_clock(request: web.Request) -> web.Response:
    clock = request.app[STATE_KEY].clock
    return web.json_response({"now": clock.now(), "elapsed": clock.elapsed(), "scale": clock.scale})


@routes.post("/_emulator/clock")
async def advance_clock(request: web.Request) -> web.Response:
    try:
        body = ClockRequest.model_validate(await _json_body(request))
    except (ValueError, ValidationError) as exc:
        return _invalid(f"invalid clock request: {exc}")
    clock = request.app[STATE_KEY].clock
    clock.advance(body.advance)
    return web.json_response({"now": clock.now(), "elapsed": clock.elapsed(), "scale": clock.scale})


def setup(app: web.Application) -> None:
    app.add_routes(routes)
