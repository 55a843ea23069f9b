"""Each record rule: a failing case pinned to its exact line and field, fed in 1-, 7- and 64 KiB chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from validate_helpers import WriteDataset, feed_file, line_of

from bailian_flow.validate import DatasetError, DatasetKind

SYSTEM = {"role": "system", "content": "You are a helpful support agent. 你是一名耐心的客服。"}
USER = {"role": "user", "content": "我的订单什么时候发货？"}
ASSISTANT = {"role": "assistant", "content": "您的订单将在 24 小时内发货。"}
GOOD_SFT = {"messages": [SYSTEM, USER, ASSISTANT]}
GOOD_DPO = {
    "messages": [SYSTEM, USER],
    "chosen": {"role": "assistant", "content": "您好，订单将在 24 小时内发货，发货后会短信通知您。"},
    "rejected": {"role": "assistant", "content": "不知道。"},
}
GOOD_CPT = {"text": "退货政策：商品签收后七天内可无理由退货。"}
GOOD = {"sft": GOOD_SFT, "dpo": GOOD_DPO, "cpt": GOOD_CPT}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


@dataclass
class Case:
    id: str
    kind: DatasetKind
    record: Any
    field: str | None
    reason: str
    options: dict[str, Any] = field(default_factory=dict)
    good: Any = None  # the valid records around the bad one, when the kind's default does not fit the options


def sft(*messages: Any) -> dict[str, Any]:
    return {"messages": list(messages)}


def dpo(**changes: Any) -> dict[str, Any]:
    record = dict(GOOD_DPO)
    for key, value in changes.items():
        if value is None:
            del record[key]
        else:
            record[key] = value
    return record


THINK = "<think>\n用户问发货时间，查一下规则。\n</think>\n\n24 小时内发货。"

CASES = [
    # record shape
    Case("sft-not-object", "sft", [GOOD_SFT], None, "expected a JSON object, got array"),
    Case("sft-missing-messages", "sft", {"conversation": []}, "messages", "missing"),
    Case(
        "sft-messages-not-array",
        "sft",
        {"messages": "hi"},
        "messages",
        "expected an array of messages, got string",
    ),
    Case("sft-messages-empty", "sft", {"messages": []}, "messages", "must not be empty"),
    Case("sft-message-not-object", "sft", sft(USER, "hello"), "messages[1]", "expected an object, got string"),
    # roles and turn order
    Case("sft-role-missing", "sft", sft(USER, {"content": "x"}), "messages[1].role", "missing"),
    Case(
        "sft-role-not-string",
        "sft",
        sft(USER, {"role": 3, "content": "x"}),
        "messages[1].role",
        "expected a string, got number",
    ),
    Case(
        "sft-role-tool",
        "sft",
        sft(USER, ASSISTANT, {"role": "tool", "content": "{}"}),
        "messages[2].role",
        "unsupported role 'tool'",
    ),
    Case(
        "sft-system-not-first",
        "sft",
        sft(USER, ASSISTANT, SYSTEM, USER, ASSISTANT),
        "messages[2].role",
        "'system' is allowed only as the first message",
    ),
    Case(
        "sft-starts-with-assistant",
        "sft",
        sft(ASSISTANT, USER, ASSISTANT),
        "messages[0].role",
        "expected 'user' as the first turn, got 'assistant'",
    ),
    Case(
        "sft-assistant-after-system",
        "sft",
        sft(SYSTEM, ASSISTANT),
        "messages[1].role",
        "expected 'user' after 'system', got 'assistant'",
    ),
    Case(
        "sft-user-twice",
        "sft",
        sft(SYSTEM, USER, USER, ASSISTANT),
        "messages[2].role",
        "expected 'assistant' after 'user', got 'user'",
    ),
    Case(
        "sft-assistant-twice",
        "sft",
        sft(USER, ASSISTANT, ASSISTANT),
        "messages[2].role",
        "expected 'user' after 'assistant', got 'assistant'",
    ),
    Case(
        "sft-ends-with-user",
        "sft",
        sft(SYSTEM, USER, ASSISTANT, USER),
        "messages[3].role",
        "the last message must be from 'assistant', got 'user'",
    ),
    Case(
        "sft-only-system",
        "sft",
        sft(SYSTEM),
        "messages[0].role",
        "the last message must be from 'assistant', got 'system'",
    ),
    # content
    Case("sft-content-missing", "sft", sft({"role": "user"}, ASSISTANT), "messages[0].content", "missing"),
    Case("sft-content-blank", "sft", sft(USER, assistant("  \n")), "messages[1].content", "must not be empty"),
    Case(
        "sft-content-null",
        "sft",
        sft(user(None), ASSISTANT),
        "messages[0].content",
        "expected a string, got null",
    ),
    Case(
        "sft-content-number",
        "sft",
        sft(USER, assistant(42)),
        "messages[1].content",
        "expected a string, got number",
    ),
    Case(
        "sft-assistant-content-list",
        "sft",
        sft(USER, assistant([{"type": "text", "text": "hi"}])),
        "messages[1].content",
        "assistant content must be a string",
    ),
    Case(
        "sft-parts-empty",
        "sft",
        sft(user([]), ASSISTANT),
        "messages[0].content",
        "must not be an empty array",
    ),
    Case(
        "sft-part-not-object",
        "sft",
        sft(user(["hi"]), ASSISTANT),
        "messages[0].content[0]",
        "expected a content part object, got string",
    ),
    Case(
        "sft-part-unknown-type",
        "sft",
        sft(user([{"type": "text", "text": "hi"}, {"type": "audio"}]), ASSISTANT),
        "messages[0].content[1].type",
        "unsupported content part type 'audio'",
    ),
    Case(
        "sft-part-text-missing",
        "sft",
        sft(user([{"type": "text"}]), ASSISTANT),
        "messages[0].content[0].text",
        "missing",
    ),
    Case(
        "sft-part-image-url-no-url",
        "sft",
        sft(user([{"type": "image_url", "image_url": {}}]), ASSISTANT),
        "messages[0].content[0].image_url.url",
        "missing",
    ),
    Case(
        "sft-part-dashscope-ambiguous",
        "sft",
        sft(user([{"text": "a", "image": "b.png"}]), ASSISTANT),
        "messages[0].content[0]",
        "expected 'type' or exactly one of 'text', 'image', 'video'",
    ),
    Case(
        "sft-part-video-empty-frame",
        "sft",
        sft(user([{"video": ["a.jpg", ""]}]), ASSISTANT),
        "messages[0].content[0].video[1]",
        "must not be empty",
    ),
    # loss_weight
    Case(
        "sft-loss-weight-on-user",
        "sft",
        sft({**USER, "loss_weight": 1}, ASSISTANT),
        "messages[0].loss_weight",
        "allowed only on assistant turns, found on a 'user' turn",
    ),
    Case(
        "sft-loss-weight-zero",
        "sft",
        sft(USER, assistant("ok", loss_weight=0)),
        "messages[1].loss_weight",
        "must be in (0, 1], got 0",
    ),
    Case(
        "sft-loss-weight-above-one",
        "sft",
        sft(USER, assistant("ok", loss_weight=1.5)),
        "messages[1].loss_weight",
        "must be in (0, 1], got 1.5",
    ),
    Case(
        "sft-loss-weight-string",
        "sft",
        sft(USER, assistant("ok", loss_weight="0.5")),
        "messages[1].loss_weight",
        "expected a number in (0, 1], got string",
    ),
    Case(
        "sft-loss-weight-boolean",
        "sft",
        sft(USER, assistant("ok", loss_weight=True)),
        "messages[1].loss_weight",
        "expected a number in (0, 1], got boolean",
    ),
    # thinking
    Case(
        "think-in-earlier-turn",
        "sft",
        sft(USER, assistant(THINK), USER, assistant(THINK)),
        "messages[1].content",
        "a <think> block is allowed only in the last assistant turn",
    ),
    Case(
        "think-not-at-start",
        "sft",
        sft(USER, assistant("好的。" + THINK)),
        "messages[1].content",
        "the <think> block must open at the very start of the content",
    ),
    Case(
        "think-unclosed",
        "sft",
        sft(USER, assistant("<think>\n想一想")),
        "messages[1].content",
        "'<think>' is never closed with '</think>'",
    ),
    Case(
        "think-no-newline-after-open",
        "sft",
        sft(USER, assistant("<think>想\n</think>\n\n答")),
        "messages[1].content",
        "'<think>' must be followed by a newline",
    ),
    Case(
        "think-close-not-on-own-line",
        "sft",
        sft(USER, assistant("<think>\n想</think>\n\n答")),
        "messages[1].content",
        "'</think>' must start a new line",
    ),
    Case(
        "think-no-blank-line-after-close",
        "sft",
        sft(USER, assistant("<think>\n想\n</think>\n答")),
        "messages[1].content",
        "'</think>' must be followed by a blank line",
    ),
    Case(
        "think-empty-answer",
        "sft",
        sft(USER, assistant("<think>\n想\n</think>\n\n ")),
        "messages[1].content",
        "the answer after '</think>' is empty",
    ),
    Case(
        "think-two-blocks",
        "sft",
        sft(USER, assistant(THINK + "<think>\n再想\n</think>\n\n答")),
        "messages[1].content",
        "only one <think> block is allowed",
    ),
    Case(
        "think-nested",
        "sft",
        sft(USER, assistant("<think>\n想 <think>\n</think>\n\n答")),
        "messages[1].content",
        "nested '<think>' inside the thinking block",
    ),
    Case(
        "think-stray-close",
        "sft",
        sft(USER, assistant("答案 </think>")),
        "messages[1].content",
        "'</think>' without an opening '<think>'",
    ),
    Case(
        "think-required",
        "sft",
        sft(USER, ASSISTANT),
        "messages[1].content",
        "thinking is enabled: must start with",
        {"thinking": True},
        sft(USER, assistant(THINK)),
    ),
    Case(
        "think-forbidden",
        "sft",
        sft(USER, assistant(THINK)),
        "messages[1].content",
        "contains a think tag but thinking is disabled",
        {"thinking": False},
    ),
    # DPO
    Case(
        "dpo-ends-with-assistant",
        "dpo",
        dpo(messages=[USER, ASSISTANT]),
        "messages[1].role",
        "the last message must be from 'user', got 'assistant'",
    ),
    Case(
        "dpo-user-twice",
        "dpo",
        dpo(messages=[SYSTEM, USER, USER]),
        "messages[2].role",
        "expected 'assistant' after 'user', got 'user'",
    ),
    Case("dpo-chosen-missing", "dpo", dpo(chosen=None), "chosen", "missing"),
    Case("dpo-chosen-string", "dpo", dpo(chosen="good answer"), "chosen", "expected an object"),
    Case(
        "dpo-chosen-role-user",
        "dpo",
        dpo(chosen={"role": "user", "content": "x"}),
        "chosen.role",
        "expected 'assistant', got 'user'",
    ),
    Case("dpo-chosen-role-missing", "dpo", dpo(chosen={"content": "x"}), "chosen.role", "missing"),
    Case(
        "dpo-chosen-content-empty",
        "dpo",
        dpo(chosen={"role": "assistant", "content": ""}),
        "chosen.content",
        "must not be empty",
    ),
    Case("dpo-rejected-missing", "dpo", dpo(rejected=None), "rejected", "missing"),
    Case(
        "dpo-rejected-content-number",
        "dpo",
        dpo(rejected={"role": "assistant", "content": 1}),
        "rejected.content",
        "expected a string, got number",
    ),
    Case(
        "dpo-identical",
        "dpo",
        dpo(rejected=dict(GOOD_DPO["chosen"])),
        "rejected.content",  # type: ignore[call-overload]
        "identical to chosen.content",
    ),
    Case(
        "dpo-think-malformed",
        "dpo",
        dpo(chosen={"role": "assistant", "content": "<think>\n想\n</think>\n答"}),
        "chosen.content",
        "'</think>' must be followed by a blank line",
    ),
    Case(
        "dpo-think-in-history",
        "dpo",
        dpo(messages=[USER, assistant(THINK), USER]),
        "messages[1].content",
        "a <think> block is allowed only in chosen and rejected",
    ),
    # CPT
    Case("cpt-not-object", "cpt", "just text", None, "expected a JSON object, got string"),
    Case("cpt-text-missing", "cpt", {"content": "x"}, "text", "missing"),
    Case("cpt-text-empty", "cpt", {"text": " "}, "text", "must not be empty"),
    Case("cpt-text-number", "cpt", {"text": 7}, "text", "expected a string, got number"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rule_violation_is_reported_at_its_line_and_field(
    case: Case, chunk_size: int, write_dataset: WriteDataset
) -> None:
    good = line_of(GOOD[case.kind] if case.good is None else case.good)
    # The bad record sits on line 3 between good ones: the line number must be counted, not assumed.
    path = write_dataset([good, good, line_of(case.record), good])

    with pytest.raises(DatasetError) as caught:
        feed_file(path, case.kind, chunk_size, **case.options)

    error = caught.value
    assert (error.object_name, error.line, error.field) == ("train.jsonl", 3, case.field)
    assert case.reason in error.reason
    where = "train.jsonl line 3" + (f", field {case.field}" if case.field else "")
    assert str(error) == f"{where}: {error.reason}"
    assert "\n" not in str(error)


@pytest.mark.parametrize("kind", ["sft", "dpo", "cpt"])
def test_unknown_extra_fields_are_tolerated(kind: DatasetKind, write_dataset: WriteDataset) -> None:
    record = {**GOOD[kind], "id": "r-1", "meta": {"source": "crm"}}
    if kind != "cpt":
        record["messages"] = [{**message, "name": "x"} for message in record["messages"]]
    stats = feed_file(write_dataset([line_of(record)]), kind, 7)
    assert stats.records == 1
