"""File-level rules of the streaming validator, valid datasets, chunk boundaries and flat memory."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from validate_helpers import WriteDataset, chunks_of, feed_file, line_of

from bailian_flow.validate import DatasetError, DatasetValidator, validate_file, validating

SYSTEM = {"role": "system", "content": "You are Acme's support assistant. 请用用户的语言回答。"}
SFT = {
    "messages": [
        SYSTEM,
        {"role": "user", "content": "How do I reset my password?"},
        {
            "role": "assistant",
            "content": "Open Settings → Security → Reset password, then follow the email link.",
        },
    ]
}
SFT_MULTI_TURN = {
    "messages": [
        SYSTEM,
        {"role": "user", "content": "我想退货。"},
        {"role": "assistant", "content": "好的，请提供订单号。", "loss_weight": 0.3},
        {"role": "user", "content": "订单号是 20240611-0042。"},
        {"role": "assistant", "content": "已为您提交退货申请，快递员将在两天内上门取件。", "loss_weight": 1},
    ]
}
SFT_MULTIMODAL = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "这个包装破损了，可以换货吗？"},
                {"type": "image_url", "image_url": {"url": "https://example.com/box.jpg"}},
            ],
        },
        {"role": "assistant", "content": "可以，我们会为您免费换货。"},
    ]
}
SFT_DASHSCOPE_PARTS = {
    "messages": [
        {
            "role": "user",
            "content": [{"image": "oss://bucket/receipt.png"}, {"text": "Is this receipt valid?"}],
        },
        {"role": "assistant", "content": "Yes, it is a valid receipt from our Shanghai store."},
    ]
}
SFT_THINKING = {
    "messages": [
        {"role": "user", "content": "运费怎么算？"},
        {"role": "assistant", "content": "满 99 元包邮。"},
        {"role": "user", "content": "我买了 120 元，要付运费吗？"},
        {
            "role": "assistant",
            "content": "<think>\n120 元超过 99 元的包邮门槛。\n</think>\n\n不需要，您的订单已包邮。",
        },
    ]
}
SFT_EMPTY_THINK = {
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\n\n</think>\n\nHello! How can I help you today?"},
    ]
}
DPO = {
    "messages": [SYSTEM, {"role": "user", "content": "Can I change my delivery address?"}],
    "chosen": {
        "role": "assistant",
        "content": "Yes — until the parcel ships you can edit it under Orders → Address.",
    },
    "rejected": {"role": "assistant", "content": "No."},
}
CPT = {"text": "Acme 会员等级分为银卡、金卡和钻石卡，积分每年一月一日清零。"}


def test_valid_sft_file_passes_in_any_chunking(write_dataset: WriteDataset, chunk_size: int) -> None:
    records = [SFT, SFT_MULTI_TURN, SFT_MULTIMODAL, SFT_DASHSCOPE_PARTS, SFT_THINKING, SFT_EMPTY_THINK]
    path = write_dataset([line_of(record) for record in records])

    stats = feed_file(path, "sft", chunk_size)

    assert (stats.kind, stats.records, stats.bytes) == ("sft", 6, path.stat().st_size)
    assert stats.warnings == ("6 record(s); Bailian recommends at least 1,000 for SFT",)


def test_thinking_file_passes_when_thinking_is_required(write_dataset: WriteDataset, chunk_size: int) -> None:
    path = write_dataset([line_of(SFT_THINKING), line_of(SFT_EMPTY_THINK)])
    assert feed_file(path, "sft", chunk_size, thinking=True).records == 2


def test_valid_dpo_and_cpt_files_pass(write_dataset: WriteDataset, chunk_size: int) -> None:
    dpo = feed_file(write_dataset([line_of(DPO)] * 3, "dpo.jsonl"), "dpo", chunk_size)
    cpt = feed_file(write_dataset([line_of(CPT)] * 2, "cpt.jsonl"), "cpt", chunk_size)

    assert (dpo.records, dpo.warnings) == (3, ("3 record(s); Bailian recommends at least 100 for DPO",))
    assert (cpt.records, cpt.warnings) == (2, ())


def test_no_warning_at_recommended_volume(write_dataset: WriteDataset) -> None:
    assert feed_file(write_dataset([line_of(DPO)] * 100), "dpo", 1 << 16).warnings == ()


def test_crlf_line_endings_and_missing_final_newline_are_accepted(tmp_path: Path, chunk_size: int) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(f"{line_of(SFT)}\r\n{line_of(SFT)}\r\n{line_of(SFT)}".encode())
    assert feed_file(path, "sft", chunk_size).records == 3


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7])
def test_multibyte_character_split_across_chunks_is_not_an_error(tmp_path: Path, chunk_size: int) -> None:
    # 3-byte CJK and 4-byte emoji characters, at every offset relative to the chunk boundaries.
    lines = [line_of({"text": "x" * shift + "退货😀政策"}) for shift in range(8)]
    path = tmp_path / "cpt.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert feed_file(path, "cpt", chunk_size).records == 8


def _write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_bytes(data)
    return path


GOOD = line_of(CPT).encode()

FILE_CASES = [
    ("invalid-json", GOOD + b"\n" + GOOD + b'\n{"text": "a",}\n', 3, "invalid JSON: Expecting property name"),
    ("truncated-json", GOOD + b'\n{"text": "unterminated\n', 2, "invalid JSON: Unterminated string"),
    ("invalid-utf8", GOOD + b'\n{"text": "caf\xe9"}\n', 2, "invalid UTF-8 at byte 14 of the line"),
    ("bom", b"\xef\xbb\xbf" + GOOD + b"\n", 1, "byte order mark"),
    ("blank-line-between-records", GOOD + b"\n\n" + GOOD + b"\n", 2, "blank line between records"),
    ("whitespace-line-between-records", GOOD + b"\n \t\r\n" + GOOD + b"\n", 2, "blank line between records"),
    ("nan", GOOD + b'\n{"text": "a", "score": NaN}\n', 2, "invalid JSON: NaN is not valid JSON"),
    ("trailing-partial-line-invalid", GOOD + b"\n" + GOOD + b'\n{"text": "cut', 3, "invalid JSON"),
]


@pytest.mark.parametrize(("data", "line", "reason"), [case[1:] for case in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_file_level_errors_carry_the_line(tmp_path: Path, chunk_size: int, data: bytes, line: int, reason: str) -> None:
    with pytest.raises(DatasetError) as caught:
        feed_file(_write_bytes(tmp_path, data), "cpt", chunk_size)
    assert caught.value.line == line
    assert caught.value.field is None
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"train.jsonl line {line}: ")


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "file is empty"), (b"\n\n  \n", "file has no records (only blank lines)")],
    ids=["empty", "only-blank-lines"],
)
def test_file_without_records_is_an_error(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(DatasetError) as caught:
        feed_file(_write_bytes(tmp_path, data), "sft", 7)
    assert (caught.value.line, caught.value.field, caught.value.reason) == (None, None, reason)
    assert str(caught.value) == f"train.jsonl: {reason}"


def test_trailing_blank_lines_are_tolerated_with_a_warning(tmp_path: Path, chunk_size: int) -> None:
    stats = feed_file(_write_bytes(tmp_path, GOOD + b"\n" + GOOD + b"\n\n\r\n"), "cpt", chunk_size)
    assert stats.records == 2
    assert stats.warnings == ("2 blank line(s) at the end of the file from line 3 were ignored",)


def test_size_limit_fails_as_soon_as_it_is_exceeded() -> None:
    validator = DatasetValidator("cpt", object_name="big.jsonl", max_bytes=1000)
    validator.feed(GOOD + b"\n")
    with pytest.raises(DatasetError) as caught:
        for _ in range(100):
            validator.feed(b"x" * 100)  # not even a complete line: the size alone decides
    assert caught.value.line is None
    assert caught.value.reason.startswith("file exceeds the 1000 bytes limit (read 1,0")
    assert validator.stats is None


def test_default_size_limit_is_the_fine_tune_file_limit() -> None:
    validator = DatasetValidator("cpt", object_name="train.jsonl")
    assert validator.max_bytes == 300 * 1024 * 1024
    with pytest.raises(DatasetError, match=r"train.jsonl: file exceeds the 300 MiB limit"):
        validator.feed(bytes(validator.max_bytes + 1))


def test_a_huge_line_fails_before_it_is_buffered_whole() -> None:
    validator = DatasetValidator("cpt", object_name="train.jsonl", max_line_bytes=64 * 1024)
    validator.feed(GOOD + b"\n")
    piece = b"a" * 4096
    fed = 0
    with pytest.raises(DatasetError) as caught:
        while fed < 10 * 1024 * 1024:
            validator.feed(piece)
            fed += len(piece)
    assert fed <= 64 * 1024  # stopped at the bound, not at the end of the line
    assert (caught.value.line, caught.value.reason) == (
        2,
        "line is longer than 64 KiB (is the file newline-delimited?)",
    )


def test_a_line_of_exactly_the_bound_passes() -> None:
    record = b'{"text": "' + b"a" * 100 + b'"}'
    validator = DatasetValidator("cpt", object_name="train.jsonl", max_line_bytes=len(record))
    validator.feed(record + b"\n")
    assert validator.finish().records == 1


def test_the_first_error_is_sticky() -> None:
    validator = DatasetValidator("cpt", object_name="train.jsonl")
    with pytest.raises(DatasetError) as first:
        validator.feed(b"not json\n")
    with pytest.raises(DatasetError) as again:
        validator.feed(GOOD + b"\n")
    with pytest.raises(DatasetError) as at_finish:
        validator.finish()
    assert first.value is again.value is at_finish.value


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset kind 'rlhf'"):
        DatasetValidator("rlhf", object_name="x.jsonl")  # type: ignore[arg-type]


def test_error_round_trips_through_to_dict_and_pickle() -> None:
    import pickle

    error = DatasetError(
        "train.jsonl", "expected 'assistant' after 'user', got 'user'", line=7, field="messages[2].role"
    )
    assert error.to_dict() == {
        "object_name": "train.jsonl",
        "line": 7,
        "field": "messages[2].role",
        "reason": "expected 'assistant' after 'user', got 'user'",
        "message": "train.jsonl line 7, field messages[2].role: expected 'assistant' after 'user', got 'user'",
    }
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.line, copy.field) == (str(error), 7, "messages[2].role")
    assert isinstance(copy, ValueError)


def test_validate_file_reports_the_file_name(write_dataset: WriteDataset) -> None:
    good = write_dataset([line_of(SFT)], "good.jsonl")
    path = write_dataset([line_of(SFT), json.dumps({"messages": [{"role": "user", "content": "hi"}]})], "my-set.jsonl")
    with pytest.raises(DatasetError, match=r"^my-set.jsonl line 2, field messages\[0\].role: the last message"):
        validate_file(path, "sft")
    with pytest.raises(DatasetError, match=r"^datasets/x.jsonl line 2"):
        validate_file(path, "sft", object_name="datasets/x.jsonl", chunk_size=3)
    assert validate_file(good, "sft", chunk_size=3, max_bytes=good.stat().st_size).records == 1


async def _stream(path: Path, size: int) -> AsyncIterator[bytes]:
    for chunk in chunks_of(path, size):
        yield chunk


async def test_validating_passes_chunks_through_and_finishes(write_dataset: WriteDataset) -> None:
    path = write_dataset([line_of(CPT)] * 5)
    validator = DatasetValidator("cpt", object_name=path.name)

    received = b"".join([chunk async for chunk in validating(_stream(path, 10), validator)])

    assert received == path.read_bytes()
    assert validator.stats is not None and validator.stats.records == 5


async def test_validating_stops_before_passing_on_a_bad_chunk(write_dataset: WriteDataset) -> None:
    path = write_dataset([line_of(CPT), line_of(CPT), '{"text": 1}', line_of(CPT)])
    validator = DatasetValidator("cpt", object_name=path.name)
    received = bytearray()

    with pytest.raises(DatasetError) as caught:
        async for chunk in validating(_stream(path, 16), validator):
            received += chunk

    assert (caught.value.line, caught.value.field) == (3, "text")
    bad_line_end = path.read_bytes().index(b'{"text": 1}') + len(b'{"text": 1}\n')
    assert len(received) < bad_line_end  # the chunk completing the bad line never reached the consumer


async def test_validating_raises_at_the_end_for_a_bad_final_line(tmp_path: Path) -> None:
    path = _write_bytes(tmp_path, GOOD + b"\n" + b'{"text": ""}')  # no final newline: checked only at the end
    chunks = []
    with pytest.raises(DatasetError) as caught:
        async for chunk in validating(_stream(path, 1 << 16), DatasetValidator("cpt", object_name="t.jsonl")):
            chunks.append(chunk)
    assert chunks == [path.read_bytes()]  # every chunk passed, the end of the stream did not
    assert (caught.value.line, caught.value.field) == (2, "text")


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    record = line_of({**SFT_MULTI_TURN, "id": "x" * 1500}).encode() + b"\n"
    path = tmp_path / "large.jsonl"
    target = 50 * 1024 * 1024
    with path.open("wb") as handle:
        block = record * 256
        while handle.tell() < target:
            handle.write(block)
    size = path.stat().st_size

    tracemalloc.start()
    try:
        stats = validate_file(path, "sft", chunk_size=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stats.bytes == size and stats.records == size // len(record)
    assert peak < 2 * 1024 * 1024, f"peak {peak:,} bytes while validating {size:,} bytes"
