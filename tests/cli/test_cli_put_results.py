"""`put` keeps same-named files apart and will not overwrite an object whose run is unfinished; a finished batch
run names its results, counts and tokens in `runs show`, and `runs results` downloads them (issue #18 §4)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import ROOT, DevStack, isolated_env, start_dev

SFT = ROOT / "samples" / "sft" / "train.jsonl"
DPO = ROOT / "samples" / "dpo" / "train.jsonl"
TERMINAL = {"DONE", "FAILED", "CANCELED"}


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(isolated_env(tmp_path_factory.mktemp("home")), "--ephemeral")
    try:
        yield stack
    finally:
        assert stack.stop() == 0


def _batch_input(count: int) -> bytes:
    rows = (
        {
            "custom_id": f"q-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
        }
        for n in range(count)
    )
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def test_same_named_files_from_two_folders_land_on_two_keys(dev: DevStack) -> None:
    sft = dev.cli_json("put", str(SFT))
    dpo = dev.cli_json("put", str(DPO))

    assert sft["key"] == "datasets/sft/train.jsonl" and dpo["key"] == "datasets/dpo/train.jsonl"
    assert sft["run"]["run_id"] != dpo["run"]["run_id"]
    assert dev.cli_json("runs", "show", sft["run"]["run_id"])["run"]["source"]["key"] == sft["key"]


def test_an_object_with_an_unfinished_run_is_not_overwritten_without_force(dev: DevStack, tmp_path: Path) -> None:
    key = "datasets/guard/train.jsonl"
    first = dev.cli_json("put", str(SFT), "--key", key)["run"]
    assert first["stage"] not in TERMINAL  # training waits for the emulator's clock, which nothing moves here

    refused = dev.cli("put", str(DPO), "--key", key)

    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert first["run_id"] in line and "--force" in line and "--key" in line
    after = dev.cli_json("runs", "show", first["run_id"])["run"]
    assert after["stage"] not in TERMINAL, "the refused upload superseded the run"

    forced = dev.cli_json("put", str(DPO), "--key", key, "--force")
    assert forced["run"]["run_id"] != first["run_id"]


def test_a_finished_run_may_be_overwritten(dev: DevStack) -> None:
    key = "datasets/again/train.jsonl"
    first = dev.cli_json("put", str(SFT), "--key", key)["run"]
    assert dev.cli("runs", "cancel", first["run_id"]).returncode == 0
    deadline = time.monotonic() + 30
    while dev.cli_json("runs", "show", first["run_id"])["run"]["stage"] != "CANCELED":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    again = dev.cli("put", str(DPO), "--key", key)
    assert again.returncode == 0, again.stderr


def test_a_finished_batch_run_shows_and_downloads_its_results(dev: DevStack, tmp_path: Path) -> None:
    source = tmp_path / "questions.jsonl"
    source.write_bytes(_batch_input(7))
    put = dev.cli("put", str(source), "--key", "batches/cli/questions.jsonl")
    assert put.returncode == 0, put.stderr
    run_id = put.stdout.strip()
    with dev.hurried():
        watched = dev.cli("runs", "watch", run_id, "--interval", "0.2", "--timeout", "60")
    assert watched.returncode == 0, watched.stdout + watched.stderr

    detail = dev.cli_json("runs", "show", run_id)
    results = detail["results"]
    prefix = f"results/cli/questions/{run_id}/"
    assert results["prefix"] == prefix and results["ready"]
    assert results["files"] == [prefix + name for name in ("output.jsonl", "errors.jsonl", "summary.json")]
    shown = dev.cli("runs", "show", run_id).stdout
    assert f"results   oss://bailian-flow/{prefix}" in shown
    assert "requests  7 in 1 shard(s): 7 completed, 0 failed" in shown
    assert results["input_tokens"] > 0 and results["output_tokens"] > 0
    assert f"tokens    {results['input_tokens']:,} in, {results['output_tokens']:,} out; cost" in shown
    assert shown.count("tokens    ") == 1

    out = tmp_path / "answers"
    downloaded = dev.cli_json("runs", "results", run_id, "-o", str(out))
    assert [item["name"] for item in downloaded["files"]] == ["output.jsonl", "errors.jsonl", "summary.json"]
    answers = [json.loads(line) for line in (out / "output.jsonl").read_text().splitlines()]
    assert [answer["custom_id"] for answer in answers] == [f"q-{n}" for n in range(7)]
    assert (out / "errors.jsonl").read_bytes() == b""
    summary = json.loads((out / "summary.json").read_text())
    # What `runs show` counts from the run's state is what the pipeline wrote into summary.json.
    for name in ("completed", "failed", "input_tokens", "output_tokens", "total"):
        assert summary[name] == results[name], name
    assert not list(out.glob(".*.part"))

    text = dev.cli("runs", "results", run_id, "-o", str(tmp_path / "again"))
    assert text.returncode == 0 and "7 completed, 0 failed" in text.stdout


def test_results_of_a_run_without_any_say_why_in_one_line(dev: DevStack) -> None:
    fine_tune = dev.cli_json("put", str(SFT), "--key", "datasets/nores/train.jsonl")["run"]["run_id"]
    done = dev.cli("runs", "results", fine_tune)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "only batch runs have results" in done.stderr
    assert dev.cli("runs", "results", "r0000000000000000").returncode == 3
