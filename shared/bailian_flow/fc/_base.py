"""What every FC event model shares: lenient models and one way to turn bad input into InvalidEvent."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class InvalidEvent(ValueError):
    """The event bytes are not the shape this handler expects; the message names the field and the problem."""


class EventModel(BaseModel):
    # FC adds fields over time: keep what we do not know instead of refusing the event.
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_event_object(raw: bytes | bytearray | str | dict[str, Any], kind: str) -> dict[str, Any]:
    """FC passes the event as bytes of JSON; tests and the local runtime may pass text or a dict."""
    if isinstance(raw, dict):
        return raw
    try:
        loaded = json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidEvent(f"{kind} event is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"{kind} event is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidEvent(f"{kind} event nests too deeply") from None
    if not isinstance(loaded, dict):
        raise InvalidEvent(f"{kind} event must be a JSON object, got {type(loaded).__name__}")
    return loaded


def validate_event(model: type[ModelT], data: dict[str, Any], kind: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(event)"
            problems.append(f"{where}: {error['msg']}")
        raise InvalidEvent(f"invalid {kind} event: " + "; ".join(problems)) from None
