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


@pytest.mark.parametrize("kind", ["sft", "cpt", "dpo"])
@pytest.mark.parametrize("thinking", [None, False, True])
def test_the_fast_path_accepts_only_what_the_full_rules_accept(kind: DatasetKind, thinking: bool | None) -> None:
    fast = FastPath(kind, thinking)
    rng = random.Random(f"{kind}-{thinking}")
    lines = SAMPLES[kind].read_bytes().splitlines()
    candidates = list(lines)
    for line in lines:
        candidates += swapped_fields(line)
        candidates += mutations(line, rng, 120)
    accepted = 0
    for line in candidates:
        if fast.accepts(line):
            accepted += 1
            assert full_rules_accept(line, kind, thinking), line[:200]
    if kind == "dpo" or (kind == "sft" and thinking is True):
        assert accepted == 0, "left to the full rules"
    else:
        assert accepted >= len(lines), "the fast path takes the valid lines"


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
