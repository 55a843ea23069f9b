"""The fast path: a typed msgspec decoder that checks a record's shape while it parses the line.

It only ever *accepts*. A line it is not sure of (any decode or type error, any rule broken) goes to the full
rules of `_rules.py` on `json.loads`, which find the error and word it; so every rule and message is the same
whichever path a line takes, and the fast path must never accept a line the full rules would refuse
(tests/validate/test_validate_fast.py checks that, line by line). Think blocks are checked by the full rules' own
`_check_thinking` on the typed strings, so that rule has one implementation.

Numbers. `json.loads` refuses an integer of more than `sys.get_int_max_str_digits()` (4,300) digits; msgspec skips
unknown fields without converting their numbers. A strictly decoded line has no unknown field: its only numbers
are `loss_weight`, typed float, and msgspec refuses a number out of float range there, which every such integer is
(>= 10**4300). So only a line the lenient twin decoded needs the long-number guard, and that guard maps the line
to digit/not-digit (`bytes.translate`) and looks for the run as a substring, two C passes where a regex
`\\d{4301}` retried a match at every digit (it was 60 % of the validator's time on long lines).

Think tags. Every byte of every assistant text is searched once for a tag (the common case has none): a long text
with the regex alternation `<think>|</think>` (sre scans for the `<` both begin with, faster than substring
searches), a short one with the substring `think>`. Only a record that may have a tag, or that must have one
(`thinking` True), builds the rules' (field, text) pairs and runs their `_check_thinking`.
"""

# No `from __future__ import annotations`: msgspec reads these local structs' annotations at runtime.
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ._errors import DatasetKind
from ._rules import THINK_CLOSE, THINK_OPEN, RecordError, _check_thinking

_THINK_TAG = re.compile(f"{re.escape(THINK_OPEN)}|{re.escape(THINK_CLOSE)}")
_UNSET: Any = msgspec.UNSET
# Digits to "0", everything else to " ": a run of digits is then a run of "0" (bytes regex `\d` is ASCII 0-9 too).
_DIGIT_MAP = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


def _schema(strict: bool) -> tuple[type[msgspec.Struct], type[msgspec.Struct], type[msgspec.Struct]]:
    """(conversation, preference, text) record types. Strict: an unknown field fails the decode, so every string
    of a line that passes was decoded, and thereby checked to be UTF-8, and every number was typed. A line with
    extra fields (tolerated) is decoded again by the lenient twin, and checked whole.
    gc=False: records hold no cycles, and a million tracked objects would make the collector the bottleneck."""

    class ImageUrl(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        url: str

    # One struct for both multimodal styles: OpenAI `{"type": ..., ...}` and DashScope's one-key parts.
    class Part(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        type: str | msgspec.UnsetType = msgspec.UNSET
        text: str | msgspec.UnsetType = msgspec.UNSET
        image_url: str | ImageUrl | msgspec.UnsetType = msgspec.UNSET
        image: str | msgspec.UnsetType = msgspec.UNSET
        video: str | list[str] | msgspec.UnsetType = msgspec.UNSET

    class Message(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        role: str
        content: str | list[Part]
        loss_weight: float | msgspec.UnsetType = msgspec.UNSET

    class Conversation(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        messages: list[Message]

    class Response(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        role: str
        content: str

    class Preference(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        messages: list[Message]
        chosen: Response
        rejected: Response

    class Text(msgspec.Struct, forbid_unknown_fields=strict, gc=False):
        text: str

    return Conversation, Preference, Text


_STRICT = _schema(strict=True)
_LENIENT = _schema(strict=False)


def _blank(text: str) -> bool:
    # The same test as the rules' `not text.strip()`: both use Python's notion of whitespace.
    return not text or text.isspace()


def _parts_ok(parts: Sequence[Any]) -> bool:
    """The rules' `_check_parts` as a yes/no on typed parts."""
    if not parts:
        return False
    for part in parts:
        part_type = part.type
        if part_type is not _UNSET:
            if part_type == "text":
                text = part.text
                if text is _UNSET or _blank(text):
                    return False
            elif part_type == "image_url":
                image_url = part.image_url
                if image_url is _UNSET or _blank(image_url if type(image_url) is str else image_url.url):
                    return False
            else:
                return False
            continue
        present = [value for value in (part.text, part.image, part.video) if value is not _UNSET]
        if len(present) != 1:
            return False
        value = present[0]
        if type(value) is list:  # only `video` may be a list (of frames)
            if not value or any(_blank(frame) for frame in value):
                return False
        elif _blank(value):
            return False
    return True


# What `_conversation` finds: a rule broken, or a good conversation with or without a possible think tag.
_BROKEN, _PLAIN, _TAGGED = -1, 0, 1


def _may_have_tag(text: str) -> bool:
    # Short texts: one substring test (a superset of both tags, `_thinking_ok` then decides exactly). Long ones: sre
    # scans for the `<` both tags begin with, faster over long answers than substring searches.
    return "think>" in text if len(text) < 1024 else _THINK_TAG.search(text) is not None


def _conversation(messages: Sequence[Any], final_role: str) -> int:
    """The rules' `_check_conversation` on typed messages; `_TAGGED` if an assistant turn may hold a think tag."""
    if not messages:
        return _BROKEN
    previous = None
    found = _PLAIN
    for index, message in enumerate(messages):
        role = message.role
        if role == "system":
            if index:
                return _BROKEN
        elif role != ("assistant" if previous == "user" else "user"):
            return _BROKEN
        content = message.content
        if type(content) is str:
            if not content or content.isspace():  # `_blank`, inlined on the hot path
                return _BROKEN
        elif role == "assistant" or not _parts_ok(content):
            return _BROKEN
        weight = message.loss_weight
        if role == "assistant":
            if weight is not _UNSET and not 0 < weight <= 1:
                return _BROKEN
            if not found and _may_have_tag(content):
                found = _TAGGED
        elif weight is not _UNSET:
            return _BROKEN
        previous = role
    return found if previous == final_role else _BROKEN


def _thinking_ok(
    history: Sequence[tuple[str, str]], finals: Sequence[tuple[str, str]], thinking: bool | None, final_name: str
) -> bool:
    """The rules' own `_check_thinking`, on (field, text) pairs as they build them."""
    try:
        _check_thinking(history, finals, thinking, final_name=final_name)
    except RecordError:
        return False
    return True


def _assistant_turns(messages: Sequence[Any]) -> list[tuple[str, str]]:
    return [(f"messages[{i}].content", m.content) for i, m in enumerate(messages) if m.role == "assistant"]


def _sft_ok(record: Any, thinking: bool | None) -> bool:
    found = _conversation(record.messages, "assistant")
    if found == _BROKEN:
        return False
    # Without a tag anywhere, only required thinking has something to check.
    if found == _PLAIN and thinking is not True:
        return True
    turns = _assistant_turns(record.messages)
    return _thinking_ok(turns[:-1], turns[-1:], thinking, "the last assistant turn")


def _dpo_ok(record: Any, thinking: bool | None) -> bool:
    found = _conversation(record.messages, "user")
    if found == _BROKEN:
        return False
    chosen, rejected = record.chosen, record.rejected
    if chosen.role != "assistant" or rejected.role != "assistant":
        return False
    if _blank(chosen.content) or _blank(rejected.content) or chosen.content == rejected.content:
        return False
    tagged = found == _TAGGED or _may_have_tag(chosen.content) or _may_have_tag(rejected.content)
    if not tagged and thinking is not True:
        return True
    finals = [("chosen.content", chosen.content), ("rejected.content", rejected.content)]
    return _thinking_ok(_assistant_turns(record.messages), finals, thinking, "chosen and rejected")


def _cpt_ok(record: Any, thinking: bool | None) -> bool:
    return not _blank(record.text)


_Check = Callable[[Any, bool | None], bool]
_CHECKS: dict[DatasetKind, tuple[int, _Check]] = {
    "sft": (0, _sft_ok),
    "dpo": (1, _dpo_ok),
    "cpt": (2, _cpt_ok),
}


class FastPath:
    """`accepts(line)`: True only when the line is a record the full rules accept; False means "not sure"."""

    def __init__(self, kind: DatasetKind, thinking: bool | None, *, enabled: bool = True) -> None:
        self._thinking = thinking
        # (strict, lenient) decoders; None when every line goes to the full rules.
        self._decoders: tuple[Callable[[bytes | memoryview], Any], Callable[[bytes | memoryview], Any]] | None = None
        schema, self._check = _CHECKS[kind]
        if enabled:
            decoders = msgspec.json.Decoder(_STRICT[schema]), msgspec.json.Decoder(_LENIENT[schema])
            self._decoders = decoders[0].decode, decoders[1].decode
        limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
        self._long_run = b"0" * (limit + 1) if limit else None

    @property
    def enabled(self) -> bool:
        return self._decoders is not None

    def accepts(self, line: bytes | memoryview) -> bool:
        if self._decoders is None:
            return False
        decode, decode_lenient = self._decoders
        try:
            record = decode(line)
        except (msgspec.DecodeError, RecursionError):
            try:
                record = decode_lenient(line)
            except (msgspec.DecodeError, RecursionError):
                return False
            whole = bytes(line)
            if not _valid_utf8(whole) or self._has_long_number(whole):
                return False
        return self._check(record, self._thinking)

    def _has_long_number(self, line: bytes) -> bool:
        """A run of more digits than `json.loads` converts (anywhere: in a string it is harmless, but rare)."""
        if self._long_run is None or len(line) < len(self._long_run):
            return False
        return self._long_run in line.translate(_DIGIT_MAP)


def _valid_utf8(line: bytes) -> bool:
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
