"""The fast path: a typed msgspec decoder that checks a record's shape while it parses the line.

It only ever *accepts*. A line it is not sure of (any decode or type error, multimodal content, a think tag, a
number too long for Python, a DPO record) goes to the full rules of `_rules.py` on `json.loads`, which find the
error and word it; so every rule and message is the same whichever path a line takes, and the fast path must
never accept a line the full rules would refuse (tests/validate/test_validate_fast.py checks that, line by line).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ._errors import DatasetKind

_THINK = "think>"  # in both tags: one search tells whether a text has either


# Strict: an unknown field fails the decode, so every string of a line that passes was decoded, and thereby checked
# to be UTF-8. A line with extra fields (tolerated) is decoded again by the lenient twin, and checked whole.
# gc=False: records hold no cycles, and a million tracked objects would make the collector the bottleneck.
class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: str
    # A list (multimodal parts) fails this type and goes to the full rules.
    content: str
    loss_weight: float | msgspec.UnsetType = msgspec.UNSET


class _Conversation(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    messages: list[_Message]


class _Text(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    text: str


class _LenientMessage(msgspec.Struct, gc=False):
    role: str
    content: str
    loss_weight: float | msgspec.UnsetType = msgspec.UNSET


class _LenientConversation(msgspec.Struct, gc=False):
    messages: list[_LenientMessage]


class _LenientText(msgspec.Struct, gc=False):
    text: str


def _blank(text: str) -> bool:
    # The same test as the rules' `not text.strip()`: both use Python's notion of whitespace.
    return not text or text.isspace()


def _sft_ok(record: _Conversation | _LenientConversation) -> bool:
    messages: Sequence[_Message | _LenientMessage] = record.messages
    if not messages:
        return False
    previous = None
    for index, message in enumerate(messages):
        role = message.role
        if role == "system":
            if index:
                return False
        elif role != ("assistant" if previous == "user" else "user"):
            return False
        content = message.content
        if _blank(content):
            return False
        if role == "assistant":
            if _THINK in content:
                return False
        elif message.loss_weight is not msgspec.UNSET:
            return False
        weight = message.loss_weight
        if weight is not msgspec.UNSET and not 0 < weight <= 1:
            return False
        previous = role
    return previous == "assistant"


def _cpt_ok(record: _Text | _LenientText) -> bool:
    return not _blank(record.text)


class FastPath:
    """`accepts(line)`: True only when the line is a record the full rules accept; False means "not sure"."""

    def __init__(self, kind: DatasetKind, thinking: bool | None, *, enabled: bool = True) -> None:
        self._decode: Callable[[bytes], Any] | None = None
        self._decode_lenient: Callable[[bytes], Any] | None = None
        self._check: Callable[[Any], bool] | None = None
        # Thinking data needs the full think-block rules; DPO records are left to the full rules too.
        if enabled and kind == "sft" and thinking is not True:
            self._decode = msgspec.json.Decoder(_Conversation).decode
            self._decode_lenient = msgspec.json.Decoder(_LenientConversation).decode
            self._check = _sft_ok
        elif enabled and kind == "cpt":
            self._decode = msgspec.json.Decoder(_Text).decode
            self._decode_lenient = msgspec.json.Decoder(_LenientText).decode
            self._check = _cpt_ok
        # json.loads refuses integers longer than this (ValueError); msgspec skips them in unknown fields.
        limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
        self._long_number = re.compile(rb"\d{%d}" % (limit + 1)) if limit else None
        self._limit = limit

    @property
    def enabled(self) -> bool:
        return self._decode is not None

    def accepts(self, line: bytes) -> bool:
        if self._decode is None or self._decode_lenient is None or self._check is None:
            return False
        try:
            record = self._decode(line)
        except (msgspec.DecodeError, RecursionError):
            try:
                record = self._decode_lenient(line)
            except (msgspec.DecodeError, RecursionError):
                return False
            if not _valid_utf8(line):
                return False
        if not self._check(record):
            return False
        return not (self._long_number and len(line) > self._limit and self._long_number.search(line))


def _valid_utf8(line: bytes) -> bool:
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
