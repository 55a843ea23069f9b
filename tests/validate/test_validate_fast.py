"""The fast path (typed msgspec decoding) never accepts a line the full rules refuse, and never changes a verdict.

Line by line against the full rules (`json.loads` + `check_record`) over the samples and thousands of seeded
mutations of them, and file by file: the same stats or the same first error with the fast path on and off.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from bailian_flow.validate import DatasetError, DatasetKind, DatasetValidator
from bailian_flow.validate._fast import FastPath
from bailian_flow.validate._rules import RecordError, check_record

ROOT = Path(__file__).resolve().parents[2]
SAMPLES: dict[DatasetKind, Path] = {kind: ROOT / "samples" / kind / "train.jsonl" for kind in ("sft", "dpo", "cpt")}
INVALID = sorted((Path(__file__).parent / "data" / "invalid").glob("*.jsonl"))
# Bytes whose insertion or substitution changes what a JSON line means.
NOISE = [
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\r",
    b"1",
    b"-",
    b"e",
    b"null",
    b"true",
    b"NaN",
    b"\\ud800",
    b"\\u00",
    "ü".encode(),
    b"<think>",
    b"</think>\n\n",
    b'"loss_weight": 0.5, ',
    b'"loss_weight": 0, ',
    b'"extra": "x", ',
    b'"role": "system", ',
    b'"content": "", ',
    b'"content": [{"text": "a"}], ',
    b"9" * 4400,
]


def full_rules_accept(line: bytes, kind: DatasetKind, thinking: bool | None) -> bool:
    try:
        record: Any = json.loads(line.decode("utf-8"), parse_constant=lambda name: float("nan") / 0)
        check_record(record, kind, thinking)
    except (ValueError, RecursionError, ZeroDivisionError, RecordError):
        return False
    return True


def mutations(line: bytes, rng: random.Random, count: int) -> list[bytes]:
    found = []
    for _ in range(count):
        mutated = bytearray(line)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(mutated) + 1)
            action = rng.random()
            if action < 0.4:
                mutated[at:at] = rng.choice(NOISE)
            elif action < 0.7 and mutated:
                del mutated[at : at + rng.randint(1, 4)]
            else:
                mutated[at : at + 1] = rng.choice(NOISE)
        found.append(bytes(mutated))
    return found


ASSISTANT = b'"role": "assistant", "content": "'
EDITS = [
    (b"assistant", b"user"),
    (b"user", b"assistant"),
    (b'"system"', b'"tool"'),
    (b'"role"', b'"rol"'),
    (b'"content": "', b'"content": "<think>\\n'),
    (b'"content": "', b'"content": "", "x": "'),
    (b'"content": "', b'"content": " \\t", "x": "'),
    (b'"content": "', "\u3000".encode() + b'", "x": "'),
    (b'"content": "', b'"content": 5, "x": "'),
    (b'"content": "', b'"content": "x", "content": "'),
    (b'"content": "', b'"extra": "\xff", "content": "'),
    (b'"content": "', b'"extra": "\\ud800", "content": "'),
    (b'"content": "', b'"loss_weight": 1, "content": "'),
    (ASSISTANT, ASSISTANT.replace(b'"content"', b'"loss_weight": 1e999, "content"')),
    (ASSISTANT, ASSISTANT.replace(b'"content"', b'"loss_weight": 0, "content"')),
    (ASSISTANT, ASSISTANT.replace(b'"content"', b'"loss_weight": -0.5, "content"')),
    (ASSISTANT, ASSISTANT.replace(b'"content"', b'"loss_weight": 1.5, "content"')),
    (ASSISTANT, ASSISTANT.replace(b'"content"', b'"loss_weight": true, "content"')),
    (ASSISTANT, ASSISTANT.replace(b'"content"', b'"loss_weight": 1, "content"')),
    (ASSISTANT, ASSISTANT + b"<think>\\n</think>\\n\\n"),
    (ASSISTANT, ASSISTANT + b"</think>"),
    (b'{"messages"', b'{"messages": 1, "messages"'),
    (b'{"messages"', b'{"n": ' + b"7" * 4400 + b', "messages"'),
    (b'{"messages"', b'{"n": "\xc3", "messages"'),
    (b'{"messages"', b"\xef\xbb\xbf" + b'{"messages"'),
    (b'"text": "', b'"text": "   ", "x": "'),
    (b'"text": "', b'"text": null, "t": "'),
    (b'"text": "', b'"t": "\xff", "text": "'),
]


def swapped_fields(line: bytes) -> list[bytes]:
    """Targeted edits: each rule's trigger, at its first place and everywhere."""
    edited = []
    for old, new in EDITS:
        if old in line:
            edited += [line.replace(old, new, 1), line.replace(old, new)]
    # Only the last assistant turn (where a think block may be, and where loss weights usually are).
    at = line.rfind(ASSISTANT)
    if at >= 0:
        for old, new in EDITS:
            if old == ASSISTANT:
                edited.append(line[:at] + new + line[at + len(old) :])
    return edited


def realistic_lines(kind: DatasetKind) -> list[bytes]:
    """What real data carries beyond the samples: long code and document answers full of digits, CJK, multimodal
    parts in both styles, think blocks, loss weights, extra fields; each dumped raw and with \\u escapes."""
    code = "```python\n" + "\n".join(f"x{i} = {i * 7919} + 0.{i}  # 注释 {i}" for i in range(900)) + "\n```"
    think = "<think>\n先分析需求，再给出代码。" + "步骤 123 " * 200 + "\n</think>\n\n" + code
    system = {"role": "system", "content": "你是助手。"}
    records: list[dict[str, Any]]
    if kind == "sft":
        records = [
            {"messages": [{"role": "user", "content": "写代码"}, {"role": "assistant", "content": code}]},
            {"messages": [system, {"role": "user", "content": "想一想"}, {"role": "assistant", "content": think}]},
            {
                "messages": [
                    {"role": "user", "content": "第一问"},
                    {"role": "assistant", "content": "第一答", "loss_weight": 0.5},
                    {"role": "user", "content": "第二问"},
                    {"role": "assistant", "content": think, "loss_weight": 1},
                ]
            },
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://img.example.com/1.jpg"}},
                            {"type": "image_url", "image_url": "https://img.example.com/2.jpg"},
                            {"type": "text", "text": "图里有什么？"},
                        ],
                    },
                    {"role": "assistant", "content": "一只猫。"},
                ]
            },
            {
                "messages": [
                    {"role": "system", "content": [{"text": "看图说话"}]},
                    {"role": "user", "content": [{"image": "oss://b/1.png"}, {"video": ["f1.jpg", "f2.jpg"]}]},
                    {"role": "assistant", "content": think},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": [{"video": "v.mp4"}, {"text": "讲讲"}]},
                    {"role": "assistant", "content": "好"},
                ]
            },
            {
                "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}],
                "meta": {"id": 12},
            },
        ]
    elif kind == "dpo":
        records = [
            {
                "messages": [{"role": "user", "content": [{"type": "text", "text": "写代码"}]}],
                "chosen": {"role": "assistant", "content": code},
                "rejected": {"role": "assistant", "content": "不会"},
            },
            {
                "messages": [system, {"role": "user", "content": "想一想"}],
                "chosen": {"role": "assistant", "content": think},
                "rejected": {"role": "assistant", "content": think.replace("先分析", "不分析")},
            },
        ]
    else:
        records = [{"text": code}, {"text": think}, {"text": "正文 " * 3000, "source": "书"}]
    return [json.dumps(record, ensure_ascii=ascii).encode() for record in records for ascii in (False, True)]


# Multimodal parts, think blocks and long numbers: each rule of the typed fast path, broken.
REALISTIC_EDITS = [
    (b'"type": "text"', b'"type": "txt"'),
    (b'"type": "text"', b'"type": "text", "type": "bogus"'),  # duplicate keys: the last one counts
    (b'"type": "image_url"', b'"type": "bogus", "type": "image_url"'),
    (b'{"text": "', b'{"text": "a", "text": "'),
    (b'"type": "text"', b'"type": "image_url"'),
    (b'"type": "image_url"', b'"type": "text"'),
    (b'"type": "image_url"', b'"type": 1'),
    (b'"type"', b'"typ"'),
    (b'"url": "', b'"url": " ", "u": "'),
    (b'"url"', b'"uri"'),
    (b'"url": "', b'"detail": "high", "url": "'),
    (b'{"image"', b'{"text": "a", "image"'),
    (b'{"image": "', b'{"image": "", "x": "'),
    (b'{"video": [', b'{"video": [], "v": ['),
    (b'{"video": [', b'{"video": [" ", '),
    (b'{"video": "', b'{"video": 5, "v": "'),
    (b'{"text": "', b'{"text": ["a"], "t": "'),
    (b"[{", b'[], "c": [{'),
    (b'"content": [', b'"content": [1, '),
    (b"<think>\\n", b"<think>"),
    (b"\\n</think>", b"</think>"),
    (b"</think>\\n\\n", b"</think>\\n"),
    (b"</think>", b""),
    (b"<think>", b"<think><think>"),
    (b"<think>", b"x<think>"),
    # A tag spelled with JSON escapes is still a tag once decoded.
    (b"think>", b"think\\u003e"),
    (b"think>", b"thin\\u006b>"),
    (b'"content": "\\u7b2c\\u4e00\\u7b54"', b'"content": "\\u003cthink\\u003e\\n\\u003c/think\\u003e\\n\\n\\u7b2c"'),
    (b'"content": "\xe7\xac\xac\xe4\xb8\x80\xe7\xad\x94"', b'"content": "<think\\u003E\\n</think\\u003E\\n\\nx"'),
    (b"</think>\\n\\n", b"</think>\\n\\n   "),
    (b"\\n</think>\\n\\n", b"\\n</think>\\n\\n<think>"),
    (b'"content": "\\u7b2c\\u4e00\\u7b54"', b'"content": "<think>\\n</think>\\n\\n\\u7b2c"'),
    (b'"content": "\xe7\xac\xac\xe4\xb8\x80\xe7\xad\x94"', b'"content": "<think>\\n</think>\\n\\nx"'),
    (b'"rejected": {"role": "assistant", "content": "', b'"rejected": {"role": "user", "content": "'),
    (b'"role": "assistant", "content": "', b'"role": "assistant", "content": [{"text": "a"}], "x": "'),
    (b'{"id": 12}', b'{"id": ' + b"8" * 4301 + b"}"),
    (b'{"id": 12}', b'{"id": ' + b"8" * 4300 + b"}"),
    (b'{"id": 12}', b'{"id": "' + b"8" * 4400 + b'"}'),
    (b'{"id": 12}', b'{"id": [' + b"1, " * 4400 + b"2]}"),
    (b'"source"', b'"n": ' + b"5" * 4301 + b', "source"'),
    (b'"loss_weight": 1', b'"loss_weight": ' + b"1" * 4301),
    (b'"loss_weight": 0.5', b'"loss_weight": 0.' + b"5" * 4400),
]


def candidates_of(lines: list[bytes], rng: random.Random, count: int) -> list[bytes]:
    candidates = list(lines)
    for line in lines:
        candidates += swapped_fields(line)
        for old, new in REALISTIC_EDITS:
            if old in line:
                candidates += [line.replace(old, new, 1), line.replace(old, new)]
        candidates += mutations(line, rng, count)
    return candidates


@pytest.mark.parametrize("kind", ["sft", "cpt", "dpo"])
@pytest.mark.parametrize("thinking", [None, False, True])
def test_the_fast_path_accepts_only_what_the_full_rules_accept(kind: DatasetKind, thinking: bool | None) -> None:
    fast = FastPath(kind, thinking)
    rng = random.Random(f"{kind}-{thinking}")
    lines = SAMPLES[kind].read_bytes().splitlines() + realistic_lines(kind)
    accepted = 0
    for line in candidates_of(lines, rng, 60):
        if fast.accepts(line):
            accepted += 1
            assert full_rules_accept(line, kind, thinking), line[:200]
    # And it takes every valid line it was given: none of them is left to the slow rules.
    valid = [line for line in lines if full_rules_accept(line, kind, thinking)]
    assert valid, "the corpus has lines valid under this thinking mode"
    assert [line for line in valid if not fast.accepts(line)] == []


def outcome(data: bytes, kind: DatasetKind, fast: bool, chunk: int, thinking: bool | None = None) -> Any:
    validator = DatasetValidator(kind, object_name="f.jsonl", fast=fast, thinking=thinking)
    try:
        for start in range(0, len(data), chunk):
            validator.feed(data[start : start + chunk])
        return validator.finish()
    except DatasetError as exc:
        return exc.to_dict()


@pytest.mark.parametrize("path", [*SAMPLES.values(), *INVALID], ids=lambda path: f"{path.parent.name}/{path.name}")
@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_files_get_the_same_verdict_with_and_without_the_fast_path(path: Path, chunk: int) -> None:
    kind: DatasetKind = "sft" if "sft" in str(path) else "dpo" if "dpo" in str(path) else "cpt"
    data = path.read_bytes()

    assert outcome(data, kind, True, chunk) == outcome(data, kind, False, chunk)


@pytest.mark.parametrize("kind", ["sft", "cpt", "dpo"])
@pytest.mark.parametrize("thinking", [None, False, True])
@pytest.mark.parametrize("chunk", [4096, 1 << 20])  # lines mostly split across chunks / mostly whole in one
def test_realistic_hostile_files_get_the_same_errors_with_and_without_the_fast_path(
    kind: DatasetKind, thinking: bool | None, chunk: int
) -> None:
    """Long, multimodal and thinking lines, each broken, collected: the same codes, lines, fields and messages."""
    lines = realistic_lines(kind)
    candidates = candidates_of(lines, random.Random(f"files-{kind}-{thinking}"), 10)
    data = b"\n".join(candidates) + b"\n"

    def collected(fast: bool) -> Any:
        validator = DatasetValidator(kind, object_name="f.jsonl", fast=fast, thinking=thinking, max_errors=10**6)
        try:
            for start in range(0, len(data), chunk):
                validator.feed(data[start : start + chunk])
            return validator.finish()
        except DatasetError as exc:
            return [error.to_dict() for error in exc.errors]

    with_fast, without = collected(True), collected(False)
    assert with_fast == without
    assert isinstance(with_fast, list) and len(with_fast) < len(candidates), "some lines pass, some fail"


def test_mutated_files_get_the_same_first_error_with_and_without_the_fast_path() -> None:
    rng = random.Random(9)
    lines = SAMPLES["sft"].read_bytes().splitlines()
    for _ in range(300):
        chosen = list(lines)
        at = rng.randrange(len(chosen))
        chosen[at] = mutations(chosen[at], rng, 1)[0]
        data = b"\n".join(chosen) + rng.choice([b"", b"\n", b"\n\n", b"\r\n"])
        for thinking in (None, False):
            assert outcome(data, "sft", True, 4096, thinking) == outcome(data, "sft", False, 4096, thinking)
