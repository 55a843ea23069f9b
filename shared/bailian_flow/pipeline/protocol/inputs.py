"""What outside input may be: the one place that bounds and checks object keys, run ids, bodies and settings.

Every door (the REST API, OSS events, sidecars and metadata) checks here, so a limit is changed in one line and a
hostile value is refused the same way everywhere: `InputError` carries the HTTP status and code the API answers
with, and the field it concerns for a FAILED run.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bailian_flow.runlog import is_run_id

# OSS refuses keys longer than 1023 bytes of UTF-8.
MAX_KEY_BYTES = 1023
# A request body holds a key, an id and a settings object: 64 KiB is generous, and small enough that nothing a
# client sends is copied into every run-log entry at size.
MAX_BODY_BYTES = 64 * 1024
# An HTTP event carries the body (base64 inflates it by 4/3) plus headers and context.
MAX_EVENT_BYTES = MAX_BODY_BYTES * 4 // 3 + 64 * 1024
# Deep enough for any real settings object; shallow enough that no parser recursion can overflow.
MAX_JSON_DEPTH = 32
# Settings a client, a sidecar or object metadata gives: each is copied into every entry of its run's log.
MAX_SETTINGS_BYTES = 16 * 1024
MAX_HYPER_PARAMETERS_BYTES = 4 * 1024
MAX_SIDECAR_BYTES = 64 * 1024
MAX_NAME_CHARS = 128
MAX_PATH_CHARS = 2048
MAX_SEGMENT_CHARS = 128
MAX_QUERY_CHARS = 256

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Strings (with their escapes) removed, what is left of a JSON text is punctuation and scalars.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class InputError(ValueError):
    """Input refused: `status` and `code` are the API's answer, `field` names what was wrong."""

    def __init__(self, message: str, *, status: int = 400, code: str = "InvalidParameter", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


def shown(value: Any, limit: int = 80) -> str:
    """A value quoted in an error, cut short: an error message must not carry 10 MB back."""
    if not isinstance(value, str):
        return f"(a {type(value).__name__})"
    return repr(value if len(value) <= limit else value[:limit] + "…")


def object_key(value: Any, *, prefix: str, field: str) -> str:
    """The canonical key of an object inside `prefix`.

    `.` and empty segments are dropped and `..` climbs one, so an alias (`datasets/a/../a/x.jsonl`) names the
    same object, and the same run, as its canonical key; a key that climbs out of `prefix` is refused.
    """
    if not isinstance(value, str) or not value:
        raise InputError(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_KEY_BYTES or len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InputError(f"{field} is longer than OSS's {MAX_KEY_BYTES} bytes", field=field)
    if _CONTROL.search(value) or "\\" in value:
        raise InputError(f"{field} {shown(value)} holds a control character or a backslash", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{field} is not valid UTF-8 text", field=field) from None
    parts: list[str] = []
    for segment in value.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise InputError(f"{field} {shown(value)} climbs above the bucket", field=field)
            parts.pop()
            continue
        parts.append(segment)
    key = "/".join(parts)
    if not key.startswith(prefix):
        raise InputError(f"{field} {shown(value)} is not an object under {prefix}", field=field)
    return key


def is_canonical_key(key: str, *, prefix: str) -> bool:
    """Whether `key` is an object under `prefix` spelled the one way `object_key` spells it."""
    try:
        return object_key(key, prefix=prefix, field="key") == key
    except InputError:
        return False


def run_id(value: Any, *, field: str = "run_id") -> str:
    """A run id as the run log names runs; anything else is a 400, never a lookup."""
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string", field=field, code="InvalidRunId")
    if not is_run_id(value):
        raise InputError(f"{field} {shown(value)} is not a run id", field=field, code="InvalidRunId")
    return value


def plain_id(value: Any, *, field: str) -> str:
    """A path parameter other than a run id (a callback kind, a token), or a Bailian file id: short and plain."""
    if not isinstance(value, str) or len(value) > MAX_SEGMENT_CHARS or not _SEGMENT.fullmatch(value):
        raise InputError(f"{field} {shown(value)} is not a plain identifier", field=field)
    return value


def query_value(query: dict[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is not None and (len(value) > MAX_QUERY_CHARS or _CONTROL.search(value)):
        raise InputError(f"query parameter {name} is too long or holds control characters", field=name)
    return value


def json_depth(raw: bytes) -> int:
    """How deeply a JSON text nests, without parsing it (so a hostile text cannot exhaust the parser's stack)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub(b"", raw)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def json_object(raw: bytes, *, what: str = "request body") -> dict[str, Any]:
    """A bounded JSON object: 413 when too big, 400 when too deep, not JSON, or not an object."""
    if len(raw) > MAX_BODY_BYTES:
        raise InputError(f"{what} is larger than {MAX_BODY_BYTES} bytes", status=413, code="PayloadTooLarge")
    if not raw.strip():
        return {}
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels", code="InvalidJSON")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text", code="InvalidJSON") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not JSON: {exc.msg} at line {exc.lineno}", code="InvalidJSON") from None
    except ValueError:  # an integer of more digits than Python converts
        raise InputError(f"{what} holds a number too long to read", code="InvalidJSON") from None
    except RecursionError:  # the depth scan makes this unreachable; kept so a parser change cannot become a 500
        raise InputError(f"{what} nests too deeply", code="InvalidJSON") from None
    if not isinstance(body, dict):
        raise InputError(f"{what} must be a JSON object", code="InvalidJSON")
    return body


def bounded_json(value: Any, *, max_bytes: int, what: str) -> Any:
    """Refuse a JSON-able setting larger than `max_bytes` once serialized (it is copied into every log entry)."""
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        raise ValueError(f"{what} must be plain JSON") from None
    if size > max_bytes:
        raise ValueError(f"{what} is {size} bytes serialized; at most {max_bytes}")
    return value
