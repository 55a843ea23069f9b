"""Batch lines and answers decoded for the few fields the pipeline reads, nothing else built.

A 4 KB request line is mostly its messages; `json.loads` builds all of them to read `custom_id` and `body.model`.
msgspec decodes into structs of just those fields and skips the rest (still checking it is JSON), about 3x faster.
Each function here answers None when its fast reading is not sure to agree with the standard library's (not UTF-8,
a token msgspec refuses or a number `json.loads` refuses, an unexpected type), and the caller then takes the
`json` path it always had: the results, and every error reported, stay those of `json`.
Imported by the acts only (msgspec stays off the timer's and webhook's import path).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from bailian_flow.validate import MAX_BATCH_LINE_BYTES, BatchLine
from bailian_flow.validate._batch import MAX_CUSTOM_ID_CHARS

# `json.loads` refuses an integer of more than 4,300 digits (CPython's int_max_str_digits); msgspec skips it.
_LONG_NUMBER = re.compile(rb"[0-9]{4301}")
_INT_DIGITS_LIMIT = 4300


class _Body(msgspec.Struct):
    model: Any = msgspec.UNSET
    enable_thinking: Any = msgspec.UNSET


class _Request(msgspec.Struct):
    custom_id: Any = msgspec.UNSET
    method: Any = msgspec.UNSET
    url: Any = msgspec.UNSET
    body: _Body | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: Any = None
    input_tokens: Any = None
    completion_tokens: Any = None
    output_tokens: Any = None


class _ResponseBody(msgspec.Struct):
    usage: _Usage | None = None


class _Response(msgspec.Struct):
    body: _ResponseBody | None = None


class _Error(msgspec.Struct):
    code: Any = None


class _Answer(msgspec.Struct):
    custom_id: Any = None
    response: _Response | None = None
    error: _Error | None = None


_REQUESTS = msgspec.json.Decoder(_Request)
_ANSWERS = msgspec.json.Decoder(_Answer)


def _decode(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    try:
        raw.decode("utf-8")  # msgspec does not check the UTF-8 of what it skips
        decoded = decoder.decode(raw)
    except (UnicodeDecodeError, msgspec.DecodeError):
        return None
    if len(raw) > _INT_DIGITS_LIMIT and _LONG_NUMBER.search(raw):
        return None
    return decoded


def valid_line(raw: bytes, *, endpoint: str, model_override: str | None) -> BatchLine | None:
    """`check_batch_line`'s answer for a line that passes every rule, None for any other (let it say why).

    The BatchLine's `request` holds only what the cross-line checks read: `body.enable_thinking` when given.
    """
    size = len(raw) - 1 if raw.endswith(b"\n") else len(raw)
    if size > MAX_BATCH_LINE_BYTES:
        return None
    request = _decode(_REQUESTS, raw)
    if request is None:
        return None
    custom_id, body = request.custom_id, request.body
    if not isinstance(custom_id, str) or not 0 < len(custom_id) <= MAX_CUSTOM_ID_CHARS:
        return None
    if request.method != "POST" or request.url != endpoint or body is None:
        return None
    thinking = body.enable_thinking
    if thinking is not msgspec.UNSET and not isinstance(thinking, bool):
        return None
    model = model_override if model_override is not None else body.model
    if not isinstance(model, str) or not model:
        return None
    checked: dict[str, Any] = {} if thinking is msgspec.UNSET else {"enable_thinking": thinking}
    return BatchLine(custom_id=custom_id, model=model, request={"body": checked})


def line_routing(raw: bytes) -> tuple[str, Any] | None:
    """(custom_id, body.model) of a line the planner validated; None when the fast reading is unsure."""
    request = _decode(_REQUESTS, raw)
    if request is None or not isinstance(request.custom_id, str) or request.body is None:
        return None
    return request.custom_id, request.body.model


def answer_fields(raw: bytes) -> tuple[Any, Any, Any, Any] | None:
    """(custom_id, error code, input tokens, output tokens) of a service answer line, read as
    `batch_results._answer_fields` reads the decoded JSON; None when the fast reading is unsure."""
    answer = _decode(_ANSWERS, raw)
    if answer is None:
        return None
    code = answer.error.code if answer.error is not None else None
    body = answer.response.body if answer.response is not None else None
    usage = body.usage if body is not None else None
    if usage is None:
        return answer.custom_id, code, 0, 0
    return (
        answer.custom_id,
        code,
        usage.prompt_tokens or usage.input_tokens or 0,
        usage.completion_tokens or usage.output_tokens or 0,
    )


class _SentIds(msgspec.Struct):
    etag: str | None
    lines: list[tuple[int, str]]


def encode_sent(etag: str | None, sent: list[tuple[int, str]]) -> bytes:
    """The (line number, custom_id) pairs a shard's file holds, for its collect to read instead of the input."""
    return msgspec.json.encode(_SentIds(etag=etag, lines=sent))


def decode_sent(data: bytes, *, etag: str | None, lines: int) -> dict[str, int] | None:
    """custom_id → line number from `encode_sent`'s bytes; None unless they are of that input version and whole."""
    try:
        sent = msgspec.json.decode(data, type=_SentIds)
    except msgspec.DecodeError:
        return None
    if sent.etag != etag or len(sent.lines) != lines:
        return None
    index = {custom_id: line_no for line_no, custom_id in sent.lines}
    return index if len(index) == lines else None
