"""One line of a batch inference input, checked by the service's rules (bailian-api.md §5).

UTF-8 JSON object, `custom_id` a non-empty string, `method` POST, `url` equal to the batch endpoint, `body` an
object whose `model` is a non-empty string (unless the run overrides the model), at most 6 MB; `body.enable_thinking`,
when given, a boolean. Uniqueness of `custom_id` and one thinking mode per input file (service-contract.md#C38) span
the whole input and are the planner's to check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._errors import DatasetError

MAX_BATCH_LINE_BYTES = 6 * 1024 * 1024
MAX_CUSTOM_ID_CHARS = 512


@dataclass(frozen=True)
class BatchLine:
    custom_id: str
    model: str
    request: dict[str, Any]
    # `body.enable_thinking` as given (None: not given, the model's default).
    thinking: bool | None = None


def check_batch_line(
    raw: bytes, *, object_name: str, line: int, endpoint: str, model_override: str | None
) -> BatchLine:
    """The parsed line, or a DatasetError naming object, line and field."""

    def bad(reason: str, field: str | None = None) -> DatasetError:
        return DatasetError(object_name, reason, line=line, field=field)

    if len(raw) > MAX_BATCH_LINE_BYTES:
        raise bad(f"line is {len(raw)} bytes, more than {MAX_BATCH_LINE_BYTES}")
    try:
        # Decoded here, not by json.loads, which would also take UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"line is not UTF-8 (byte {exc.start + 1})") from None
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise bad(f"line is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise bad("line must be a JSON object")
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise bad("custom_id must be a non-empty string", "custom_id")
    if len(custom_id) > MAX_CUSTOM_ID_CHARS:
        raise bad(f"custom_id is longer than {MAX_CUSTOM_ID_CHARS} characters", "custom_id")
    if request.get("method") != "POST":
        raise bad(f"method must be 'POST', got {request.get('method')!r}", "method")
    if request.get("url") != endpoint:
        raise bad(f"url must be the batch endpoint {endpoint!r}, got {request.get('url')!r}", "url")
    body = request.get("body")
    if not isinstance(body, dict):
        raise bad("body must be a JSON object", "body")
    model = body.get("model")
    if model_override is not None:
        model = model_override
    elif not isinstance(model, str) or not model:
        raise bad("body.model must be a non-empty string", "body.model")
    thinking = body.get("enable_thinking")
    if thinking is not None and not isinstance(thinking, bool):
        raise bad("body.enable_thinking must be true or false", "body.enable_thinking")
    return BatchLine(custom_id=custom_id, model=str(model), request=request, thinking=thinking)
