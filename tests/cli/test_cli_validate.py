"""`bailian-flow validate` as a subprocess: every error, record counts, Qwen tokens and the cost estimate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_command, isolated_env

GOOD = {"messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}]}
CHINESE = {
    "messages": [{"role": "user", "content": "今天天气怎么样？"}, {"role": "assistant", "content": "晴天，二十度。"}]
}
MIXED = {
    "messages": [
        {"role": "system", "content": "You are 百炼's helper."},
        {"role": "user", "content": "Translate 'fine-tuning' 到中文 please 🙂"},
        {"role": "assistant", "content": "微调 (fine-tuning)"},
    ]
}
LAST_IS_USER = {"messages": [{"role": "user", "content": "hi"}]}


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records))
    return path


def _validate(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        cli_command("validate", *args, "--json"),
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def _chatml(record: dict[str, Any]) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in record["messages"])


def test_every_error_is_reported_with_line_and_field(tmp_path: Path) -> None:
    data = _write(tmp_path / "train.jsonl", [GOOD, LAST_IS_USER, GOOD, "{not json", GOOD, {"messages": "x"}])
    code, report = _validate(tmp_path, str(data))
    assert code == 1 and report["ok"] is False
    assert [e["line"] for e in report["errors"]] == [2, 4, 6]
    assert report["errors"][0]["field"] == "messages[0].role"
    assert "JSON" in report["errors"][1]["message"]
    assert report["errors"][2]["field"] == "messages"
    assert report["records"] == 3 and report["lines"] == 6


def test_the_cap_stops_the_report(tmp_path: Path) -> None:
    data = _write(tmp_path / "train.jsonl", [LAST_IS_USER] * 10)
    code, report = _validate(tmp_path, str(data), "--max-errors", "3")
    assert code == 1 and len(report["errors"]) == 3 and report["truncated"] is True


def test_tokens_match_the_dashscope_tokenizer_and_price_the_run(tmp_path: Path) -> None:
    from dashscope.tokenizers import get_tokenizer

    records = [GOOD, CHINESE, MIXED]
    data = _write(tmp_path / "train.jsonl", records)
    code, report = _validate(tmp_path, str(data), "--model", "qwen3-14b", "--epochs", "3")
    assert code == 0 and report["ok"] and report["errors"] == []
    tokenizer = get_tokenizer("qwen-turbo")
    expected = sum(len(tokenizer.encode(_chatml(record))) for record in records)
    assert report["tokens"] == expected
    assert report["cost"]["currency"] == "USD"
    assert report["cost"]["amount"] == pytest.approx(expected * 3 * 0.0016 / 1000)


def test_a_model_without_a_price_gets_no_guess(tmp_path: Path) -> None:
    data = _write(tmp_path / "train.jsonl", [GOOD])
    code, report = _validate(tmp_path, str(data), "--model", "qwen3-8b")
    assert code == 0 and report["cost"] is None
    assert any("no training price for qwen3-8b" in note for note in report["notes"])


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog, twice; then it rests.",
        "百炼平台支持对通义千问模型进行微调，并一键部署。",
        "Qwen3-14B 的 fine-tune 价格是 $0.0016/1K tokens，épée ✓ 🙂",
    ],
    ids=["english", "chinese", "mixed"],
)
def test_the_token_count_is_the_qwen_tokenizer_s(text: str) -> None:
    from dashscope.tokenizers import get_tokenizer

    from bailian_flow.estimate import QwenTokens

    assert QwenTokens.load().count(text) == len(get_tokenizer("qwen-turbo").encode(text))


def _batch_line(custom_id: str, model: str, content: str) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def test_a_batch_input_gets_its_shard_plan_and_batch_price(tmp_path: Path) -> None:
    lines = [_batch_line(f"r{i}", "qwen-plus" if i % 2 else "qwen-turbo", f"question {i}") for i in range(6)]
    data = _write(tmp_path / "requests.jsonl", lines)
    code, report = _validate(tmp_path, str(data), "--type", "batch")
    assert code == 0 and report["records"] == 6
    assert sorted((s["model"], s["lines"]) for s in report["shards"]) == [("qwen-plus", 3), ("qwen-turbo", 3)]
    assert report["tokens"] > 0
    assert report["cost"]["currency"] == "CNY"
    assert any("qwen-turbo" in note for note in report["notes"])

    code, report = _validate(tmp_path, str(data), "--type", "batch", "--model", "qwen-plus")
    assert [s["model"] for s in report["shards"]] == ["qwen-plus"]


def test_a_bad_batch_input_names_line_and_field(tmp_path: Path) -> None:
    data = _write(tmp_path / "requests.jsonl", [_batch_line("a", "qwen-plus", "x"), _batch_line("a", "qwen-plus", "y")])
    code, report = _validate(tmp_path, str(data), "--type", "batch")
    assert code == 1
    assert report["errors"] == [{"line": 2, "field": "custom_id", "message": "custom_id 'a' is already used on line 1"}]


def test_the_text_report_lists_each_problem(tmp_path: Path) -> None:
    data = _write(tmp_path / "train.jsonl", [GOOD, LAST_IS_USER, GOOD, LAST_IS_USER])
    done = subprocess.run(
        cli_command("validate", str(data)), env=isolated_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "line 2, messages[0].role" in done.stdout and "line 4, messages[0].role" in done.stdout
    assert "invalid (2 problem(s))" in done.stdout


def test_piped_output_keeps_each_line_whole(tmp_path: Path) -> None:
    long_dir = tmp_path / ("a-directory-name-long-enough-to-pass-eighty-columns-" * 2)
    long_dir.mkdir()
    path = _write(long_dir / "train.jsonl", [GOOD, LAST_IS_USER])
    done = subprocess.run(
        cli_command("validate", str(path), "--no-tokens"),
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"{path}: invalid (1 problem(s)), 1 record(s)" in done.stdout.splitlines(), done.stdout


def test_a_file_over_the_file_api_limit_is_warned_about_before_it_is_read(tmp_path: Path) -> None:
    from bailian_flow.validate import FILE_API_MAX_BYTES

    # Sparse: one good line, then zeros up to one byte past the limit (the rest is a line too long to read).
    data = _write(tmp_path / "train.jsonl", [GOOD])
    with data.open("r+b") as handle:
        handle.truncate(FILE_API_MAX_BYTES + 1)
    code, report = _validate(tmp_path, str(data), "--no-tokens")

    assert code == 1 and report["errors"][0]["line"] == 2
    assert report["warnings"][0] == (
        f"train.jsonl is {FILE_API_MAX_BYTES + 1:,} bytes, more than the 300 MiB a file may have on Bailian's file API "
        "(模型定制文件管理服务, 使用限制: 单个文件大小最大为300MB): the upload will be refused; split it"
    )

    with data.open("r+b") as handle:
        handle.truncate(FILE_API_MAX_BYTES)
    _, report = _validate(tmp_path, str(data), "--no-tokens")
    assert not any("file API" in warning for warning in report["warnings"])
