"""Per-record rules for Bailian training data (bailian-api.md §9), one parsed JSON line at a time.

Each check raises `RecordError(field, reason)`; the streaming validator adds the object name and line.
Decisions beyond the reference, each chosen so that a file we accept is one Bailian can train on:
- roles are `system`, `user`, `assistant` only (§9 lists no `tool` role);
- `system` only as the first message; then `user`/`assistant` strictly alternate, starting with `user`;
- content is a non-blank string; user and system turns may also use a list of multimodal parts
  (OpenAI style `{"type": "text"|"image_url", ...}` or DashScope style `{"text"|"image"|"video": ...}`);
  assistant content must be a string, because that is the text the model learns to produce;
- unknown extra fields, top-level or per message, are tolerated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import DatasetKind

ROLES = ("system", "user", "assistant")
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class RecordError(Exception):
    """A rule broken inside one record; `field` is a JSON path (`messages[2].role`) or None."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages a user recognises."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short(value: Any, limit: int = 40) -> str:
    """A one-line, bounded repr of user data for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_record(record: Any, kind: DatasetKind, thinking: bool | None) -> None:
    if not isinstance(record, dict):
        raise RecordError(None, f"expected a JSON object, got {json_type(record)}")
    if kind == "sft":
        _check_sft(record, thinking)
    elif kind == "dpo":
        _check_dpo(record, thinking)
    else:
        _check_cpt(record)


def _check_sft(record: Mapping[str, Any], thinking: bool | None) -> None:
    messages = _check_conversation(record, final_role="assistant")
    assistant_turns = [
        (f"messages[{i}].content", m["content"]) for i, m in enumerate(messages) if m["role"] == "assistant"
    ]
    *history, final = assistant_turns
    _check_thinking(history, [final], thinking, final_name="the last assistant turn")


def _check_dpo(record: Mapping[str, Any], thinking: bool | None) -> None:
    messages = _check_conversation(record, final_role="user")
    chosen = _check_response(record, "chosen")
    rejected = _check_response(record, "rejected")
    if chosen == rejected:
        raise RecordError(
            "rejected.content", "identical to chosen.content; a preference pair needs two different responses"
        )
    history = [(f"messages[{i}].content", m["content"]) for i, m in enumerate(messages) if m["role"] == "assistant"]
    _check_thinking(
        history,
        [("chosen.content", chosen), ("rejected.content", rejected)],
        thinking,
        final_name="chosen and rejected",
    )


def _check_cpt(record: Mapping[str, Any]) -> None:
    if "text" not in record:
        raise RecordError("text", 'missing (a CPT record is {"text": "..."})')
    _check_text(record["text"], "text")


def _check_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {json_type(value)}")
    if not value.strip():
        raise RecordError(field, "must not be empty")
    return value


def _check_conversation(record: Mapping[str, Any], *, final_role: str) -> Sequence[Mapping[str, Any]]:
    if "messages" not in record:
        raise RecordError("messages", "missing")
    messages = record["messages"]
    if not isinstance(messages, list):
        raise RecordError("messages", f"expected an array of messages, got {json_type(messages)}")
    if not messages:
        raise RecordError("messages", "must not be empty")
    previous: str | None = None
    for index, message in enumerate(messages):
        path = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RecordError(path, f"expected an object, got {json_type(message)}")
        role = _check_role(message, path)
        if role == "system":
            if index != 0:
                raise RecordError(f"{path}.role", "'system' is allowed only as the first message")
        else:
            expected = "assistant" if previous == "user" else "user"
            if role != expected:
                after = f"after {previous!r}" if previous is not None else "as the first turn"
                raise RecordError(f"{path}.role", f"expected {expected!r} {after}, got {role!r}")
        _check_content(message, path, role)
        if "loss_weight" in message:
            _check_loss_weight(message["loss_weight"], f"{path}.loss_weight", role)
        previous = role
    if previous != final_role:
        raise RecordError(
            f"messages[{len(messages) - 1}].role",
            f"the last message must be from {final_role!r}, got {previous!r}",
        )
    return messages


def _check_role(message: Mapping[str, Any], path: str) -> str:
    if "role" not in message:
        raise RecordError(f"{path}.role", "missing")
    role = message["role"]
    if not isinstance(role, str):
        raise RecordError(f"{path}.role", f"expected a string, got {json_type(role)}")
    if role not in ROLES:
        raise RecordError(f"{path}.role", f"unsupported role {short(role)} (expected 'system', 'user' or 'assistant')")
    return role


def _check_content(message: Mapping[str, Any], path: str, role: str) -> None:
    field = f"{path}.content"
    if "content" not in message:
        raise RecordError(field, "missing")
    content = message["content"]
    if isinstance(content, list) and role != "assistant":
        _check_parts(content, field)
    elif isinstance(content, list):
        raise RecordError(field, "assistant content must be a string (the text the model learns to produce)")
    else:
        _check_text(content, field)


def _check_parts(parts: Sequence[Any], field: str) -> None:
    if not parts:
        raise RecordError(field, "must not be an empty array")
    for index, part in enumerate(parts):
        path = f"{field}[{index}]"
        if not isinstance(part, dict):
            raise RecordError(path, f"expected a content part object, got {json_type(part)}")
        if "type" in part:
            _check_typed_part(part, path)
            continue
        # DashScope's own multimodal shape: one key per part.
        keys = [key for key in ("text", "image", "video") if key in part]
        if len(keys) != 1:
            raise RecordError(path, "expected 'type' or exactly one of 'text', 'image', 'video'")
        key = keys[0]
        value = part[key]
        if key == "video" and isinstance(value, list):
            if not value:
                raise RecordError(f"{path}.video", "must not be an empty array")
            for frame_index, frame in enumerate(value):
                _check_text(frame, f"{path}.video[{frame_index}]")
        else:
            _check_text(value, f"{path}.{key}")


def _check_typed_part(part: Mapping[str, Any], path: str) -> None:
    part_type = part["type"]
    if part_type == "text":
        if "text" not in part:
            raise RecordError(f"{path}.text", "missing")
        _check_text(part["text"], f"{path}.text")
    elif part_type == "image_url":
        if "image_url" not in part:
            raise RecordError(f"{path}.image_url", "missing")
        image_url = part["image_url"]
        if isinstance(image_url, dict):
            if "url" not in image_url:
                raise RecordError(f"{path}.image_url.url", "missing")
            _check_text(image_url["url"], f"{path}.image_url.url")
        else:
            _check_text(image_url, f"{path}.image_url")
    else:
        raise RecordError(
            f"{path}.type",
            f"unsupported content part type {short(part_type)} (expected 'text' or 'image_url')",
        )


def _check_loss_weight(value: Any, field: str, role: str) -> None:
    if role != "assistant":
        raise RecordError(field, f"allowed only on assistant turns, found on a {role!r} turn")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(field, f"expected a number in (0, 1], got {json_type(value)}")
    if not (math.isfinite(value) and 0 < value <= 1):
        raise RecordError(field, f"must be in (0, 1], got {value}")


def _check_response(record: Mapping[str, Any], name: str) -> str:
    if name not in record:
        raise RecordError(name, "missing (a DPO record needs 'chosen' and 'rejected')")
    response = record[name]
    if not isinstance(response, dict):
        raise RecordError(
            name, f'expected an object {{"role": "assistant", "content": ...}}, got {json_type(response)}'
        )
    if "role" not in response:
        raise RecordError(f"{name}.role", "missing")
    if response["role"] != "assistant":
        raise RecordError(f"{name}.role", f"expected 'assistant', got {short(response['role'])}")
    if "content" not in response:
        raise RecordError(f"{name}.content", "missing")
    return _check_text(response["content"], f"{name}.content")


def _has_think_tag(text: str) -> bool:
    return THINK_OPEN in text or THINK_CLOSE in text


def _check_thinking(
    history: Sequence[tuple[str, str]],
    finals: Sequence[tuple[str, str]],
    thinking: bool | None,
    *,
    final_name: str,
) -> None:
    """Thinking data puts one `<think>\\n…\\n</think>\\n\\n` block at the start of the final answer only.

    `thinking` True requires the block; None enforces its shape only when a record uses a think tag; False
    rejects think tags, since a non-thinking model would learn to print them.
    """
    tagged = [(field, text) for field, text in (*history, *finals) if _has_think_tag(text)]
    if thinking is False:
        if tagged:
            raise RecordError(tagged[0][0], "contains a think tag but thinking is disabled for this dataset")
        return
    if thinking is None and not tagged:
        return
    for field, text in history:
        if _has_think_tag(text):
            raise RecordError(field, f"a <think> block is allowed only in {final_name}")
    for field, text in finals:
        _check_think_block(text, field)


def _check_think_block(text: str, field: str) -> None:
    if not text.startswith(THINK_OPEN):
        if THINK_OPEN in text:
            raise RecordError(field, "the <think> block must open at the very start of the content")
        if THINK_CLOSE in text:
            raise RecordError(field, "'</think>' without an opening '<think>'")
        raise RecordError(field, "thinking is enabled: must start with '<think>\\n…\\n</think>\\n\\n'")
    if not text.startswith(THINK_OPEN + "\n"):
        raise RecordError(field, "'<think>' must be followed by a newline")
    close = text.find(THINK_CLOSE, len(THINK_OPEN))
    nested = text.find(THINK_OPEN, len(THINK_OPEN))
    if close < 0:
        raise RecordError(field, "'<think>' is never closed with '</think>'")
    if 0 <= nested < close:
        raise RecordError(field, "nested '<think>' inside the thinking block")
    # The newline after '<think>' may double as the one before '</think>' (an empty thinking block).
    if text[close - 1] != "\n":
        raise RecordError(field, "'</think>' must start a new line")
    answer_start = close + len(THINK_CLOSE)
    if not text.startswith("\n\n", answer_start):
        raise RecordError(field, "'</think>' must be followed by a blank line ('\\n\\n') before the answer")
    answer = text[answer_start + 2 :]
    if _has_think_tag(answer):
        raise RecordError(field, "only one <think> block is allowed")
    if not answer.strip():
        raise RecordError(field, "the answer after '</think>' is empty")
