"""Batch input lines: the 6 MB line limit and one thinking mode per input file, with errors naming file, line, field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bailian_flow.validate import MAX_BATCH_LINE_BYTES, DatasetError, ThinkingModes, check_batch_line

ENDPOINT = "/v1/chat/completions"


def raw_line(custom_id: str, model: str = "qwen-plus", **body: Any) -> bytes:
    request = {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {"model": model, "messages": [{"role": "user", "content": "你好"}], **body},
    }
    return json.dumps(request, ensure_ascii=False).encode() + b"\n"


def check_file(lines: list[bytes], default_thinking: Any = None) -> None:
    """What the planner does per input: each line checked, then its thinking mode against the file's."""
    modes = ThinkingModes("in.jsonl", default_thinking=default_thinking)
    for number, raw in enumerate(lines, start=1):
        line = check_batch_line(raw, object_name="in.jsonl", line=number, endpoint=ENDPOINT, model_override=None)
        modes.check(line, line=number)


def padded_to(size: int) -> bytes:
    """A line of exactly `size` bytes before its newline."""
    base = raw_line("1")[:-1]
    filler = size - len(base)
    return raw_line("1", user="x" * (filler - len(b', "user": ""')))


def test_a_line_of_exactly_6_mb_passes_and_one_byte_more_is_named() -> None:
    exact = padded_to(MAX_BATCH_LINE_BYTES)
    assert len(exact) == MAX_BATCH_LINE_BYTES + 1  # and its newline
    check_batch_line(exact, object_name="in.jsonl", line=4, endpoint=ENDPOINT, model_override=None)

    over = padded_to(MAX_BATCH_LINE_BYTES + 1)
    with pytest.raises(DatasetError) as caught:
        check_batch_line(over, object_name="in.jsonl", line=4, endpoint=ENDPOINT, model_override=None)

    assert (caught.value.object_name, caught.value.line, caught.value.field) == ("in.jsonl", 4, None)
    assert str(caught.value) == (
        "in.jsonl line 4: line is 6291457 bytes, more than 6291456 (the 6 MB limit on a batch input line)"
    )


def test_enable_thinking_must_be_a_boolean() -> None:
    with pytest.raises(DatasetError) as caught:
        check_file([raw_line("1"), raw_line("2", enable_thinking="yes")])

    assert str(caught.value) == "in.jsonl line 2, field body.enable_thinking: must be true or false"


@pytest.mark.parametrize(
    "flags",
    [
        [True, True, True],
        [False, False],
        [None, None, None],  # all left to the model, whatever its default
    ],
)
def test_one_thinking_mode_throughout_passes(flags: list[bool | None]) -> None:
    check_file(
        [raw_line(str(i), **({} if flag is None else {"enable_thinking": flag})) for i, flag in enumerate(flags)]
    )


def test_true_then_false_fails_at_the_second_mode_naming_the_first() -> None:
    lines = [
        raw_line("a", enable_thinking=True),
        raw_line("b", enable_thinking=True),
        raw_line("c", enable_thinking=False),
    ]

    with pytest.raises(DatasetError) as caught:
        check_file(lines)

    error = caught.value
    assert (error.object_name, error.line, error.field) == ("in.jsonl", 3, "body.enable_thinking")
    assert error.reason == (
        "enable_thinking false but line 1 has enable_thinking true for model qwen-plus; a batch input file takes "
        "one thinking mode, so set enable_thinking the same on every line"
    )


def test_an_absent_flag_is_the_model_default() -> None:
    thinks = {"qwen3-thinker": True, "qwen-plus": False}.get
    # A model that thinks by default: absent is thinking, so it goes with true and not with false.
    check_file([raw_line("1", "qwen3-thinker"), raw_line("2", "qwen3-thinker", enable_thinking=True)], thinks)
    with pytest.raises(DatasetError) as caught:
        check_file([raw_line("1", "qwen3-thinker"), raw_line("2", "qwen3-thinker", enable_thinking=False)], thinks)
    assert caught.value.line == 2
    assert "line 1 has enable_thinking absent (the model's default: thinking)" in caught.value.reason
    # A model that does not: absent goes with false.
    check_file([raw_line("1", enable_thinking=False), raw_line("2")], thinks)
    with pytest.raises(DatasetError, match=r"absent \(the model's default: not thinking\) but line 1 has"):
        check_file([raw_line("1", enable_thinking=True), raw_line("2")], thinks)


@pytest.mark.parametrize("explicit", [True, False])
def test_an_absent_flag_of_unknown_default_does_not_mix_with_an_explicit_one(explicit: bool) -> None:
    with pytest.raises(DatasetError) as caught:
        check_file([raw_line("1"), raw_line("2"), raw_line("3", enable_thinking=explicit)])

    assert (caught.value.line, caught.value.field) == (3, "body.enable_thinking")
    assert "line 1 has enable_thinking absent (the model's default: unknown)" in caught.value.reason


def test_modes_are_kept_per_model_as_the_planner_shards_by_model() -> None:
    check_file(
        [
            raw_line("1", "qwen-plus", enable_thinking=True),
            raw_line("2", "qwen-max", enable_thinking=False),
            raw_line("3", "qwen-plus", enable_thinking=True),
        ]
    )
