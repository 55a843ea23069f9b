"""Batch inference input, checked by the service's rules (bailian-api.md §5).

A line: UTF-8 JSON object, `custom_id` a non-empty string, `method` POST, `url` equal to the batch endpoint, `body`
an object whose `model` is a non-empty string (unless the run overrides the model), `body.enable_thinking` absent or
a boolean, at most 6 MB (`MAX_BATCH_LINE_BYTES`, "each line ≤6 MB"). Across lines: one thinking mode per input file
(`ThinkingModes`). Uniqueness of `custom_id` spans the whole input and is the planner's to check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import DatasetError

# "Each line ≤6 MB" (bailian-api.md §5, batch input rules); read as MiB, the reading the pipeline has always split by.
MAX_BATCH_LINE_BYTES = 6 * 1024 * 1024
MAX_CUSTOM_ID_CHARS = 512


@dataclass(frozen=True)
class BatchLine:
    custom_id: str
    model: str
    request: dict[str, Any]


def check_batch_line(
    raw: bytes, *, object_name: str, line: int, endpoint: str, model_override: str | None
) -> BatchLine:
    """The parsed line, or a DatasetError naming object, line and field."""

    def bad(reason: str, field: str | None = None) -> DatasetError:
        return DatasetError(object_name, reason, line=line, field=field)

    # The newline ends the line and is not part of it (as the emulator's batch runner counts).
    size = len(raw) - 1 if raw.endswith(b"\n") else len(raw)
    if size > MAX_BATCH_LINE_BYTES:
        raise bad(f"line is {size} bytes, more than {MAX_BATCH_LINE_BYTES} (the 6 MB limit on a batch input line)")
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
    if "enable_thinking" in body and not isinstance(body["enable_thinking"], bool):
        raise bad("must be true or false", "body.enable_thinking")
    model = body.get("model")
    if model_override is not None:
        model = model_override
    elif not isinstance(model, str) or not model:
        raise bad("body.model must be a non-empty string", "body.model")
    return BatchLine(custom_id=custom_id, model=str(model), request=request)


class ThinkingModes:
    """One thinking mode per batch input file, across its lines.

    Model Studio, "Batch inference" (https://help.aliyun.com/en/model-studio/batch-inference), section "Scope",
    "Important", the note on models with a thinking mode (the stored copies are cut inside it, the Spanish one at
    "Algunos modelos admiten el modo de pensami…"); the rule as bailian-api.md "Corrections" records it from that
    page: "one thinking mode (`enable_thinking`) per input file".

    A line's mode is its `body.enable_thinking`, or, when absent, the model's default: `default_thinking(model)`
    says it (True for a model that thinks unless told not to), None when unknown; an absent flag of unknown default
    then must not meet an explicit one (the strictest reading: it may be either).
    The planner splits an input by model, one Bailian input file per shard, so modes are kept per model.
    """

    def __init__(self, object_name: str, *, default_thinking: Callable[[str], bool | None] | None = None) -> None:
        self.object_name = object_name
        self._default = default_thinking or _unknown
        self._first: dict[str, tuple[bool | None, int, str]] = {}  # model -> (mode, line, how the line set it)

    def check(self, request: BatchLine, *, line: int) -> None:
        """Raise a DatasetError naming this line, its field, and the first line of the same model whose mode differs."""
        body = request.request.get("body")
        flag = body.get("enable_thinking") if isinstance(body, dict) else None
        mode: bool | None
        if isinstance(flag, bool):
            mode, how = flag, f"enable_thinking {str(flag).lower()}"
        else:
            mode = self._default(request.model)
            default = "unknown" if mode is None else "thinking" if mode else "not thinking"
            how = f"enable_thinking absent (the model's default: {default})"
        first = self._first.setdefault(request.model, (mode, line, how))
        # An unknown default may be either mode, so it matches only another line that leaves the flag out.
        same = first[0] == mode and (mode is not None or first[2] == how)
        if not same:
            raise DatasetError(
                self.object_name,
                f"{how} but line {first[1]} has {first[2]} for model {request.model}; a batch input file takes "
                "one thinking mode, so set enable_thinking the same on every line",
                line=line,
                field="body.enable_thinking",
            )


def _unknown(model: str) -> bool | None:
    return None
