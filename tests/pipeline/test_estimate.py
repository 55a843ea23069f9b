"""The run records what `bailian-flow validate` would estimate before its job starts, and what Bailian billed
after: the same tokens, the same price table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import ROOT, SFT_SAMPLE, Pipeline

from bailian_flow.estimate import QwenTokens, training_cost


def test_a_run_records_its_estimate_before_the_job_and_its_usage_after(pipeline: Pipeline) -> None:
    key = "datasets/estimate/train.jsonl"
    pipeline.put(key + ".flow.yaml", b"model: qwen3-14b\nhyper_parameters: {n_epochs: 2}\n")
    run_id = pipeline.upload(key, SFT_SAMPLE)
    run = pipeline.pump(run_id, timeout=60)
    assert run["stage"] == "DONE", run

    counter = QwenTokens.load()
    records = [json.loads(line) for line in SFT_SAMPLE.splitlines() if line.strip()]
    tokens = sum(counter.record_tokens(record, "sft") for record in records)
    cost = training_cost("qwen3-14b", tokens, 2)
    assert cost is not None
    assert run["estimate"] == {
        "model": "qwen3-14b",
        "records": len(records),
        "tokens": tokens,
        "epochs": 2,
        "cost": cost.to_dict(),
    }
    # Recorded at file-ready, before the job was asked for (the entry's own copy in the run log).
    [ready] = [entry["seq"] for entry in pipeline.history(run_id) if entry["stage"] == "file-ready"]
    entry = pipeline.get(f"runs/{run_id}/{ready:08d}.json")
    assert entry is not None
    assert json.loads(entry)["state"]["estimate"] == run["estimate"]
    assert json.loads(entry)["state"]["job_id"] is None
    job = pipeline.fine_tune(run["job_id"])
    assert run["usage"] == {"tokens": job["usage"]}


def test_the_fc_layer_counts_tokens_with_its_own_copy_of_the_vocabulary(tmp_path: Path) -> None:
    """On FC dashscope is not installed: deploy/build.sh copies its vocabulary into the layer, where the counter
    finds it first (a fresh interpreter, as a cold instance, with the layer's directory on sys.path)."""
    from bailian_flow.estimate._tokens import LAYER_VOCABULARY, vocabulary_path

    layer = tmp_path / "python"
    (layer / LAYER_VOCABULARY).parent.mkdir(parents=True)
    shutil.copyfile(vocabulary_path(), layer / LAYER_VOCABULARY)
    child = (
        "import json, sys\nsys.path.insert(0, sys.argv[1])\n"
        "from bailian_flow.estimate import shared_counter\nfrom bailian_flow.estimate._tokens import vocabulary_path\n"
        "counter = shared_counter()\n"
        "print(json.dumps({'path': str(vocabulary_path()), 'tokens': counter.count(sys.argv[2])}))"
    )
    text = "你好，世界！Hello, world. <think>推理</think>"
    out = subprocess.run(
        [sys.executable, "-c", child, str(layer), text],
        env={**os.environ, "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout)
    assert found["path"] == str(layer / LAYER_VOCABULARY)
    assert found["tokens"] == QwenTokens.load().count(text)
    script = (ROOT / "deploy" / "build.sh").read_text(encoding="utf-8")
    assert "[fc]" in script and str(LAYER_VOCABULARY) in script and "VOCAB_SHA256" in script
