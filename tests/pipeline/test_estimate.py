"""The run records what `bailian-flow validate` would estimate before its job starts, and what Bailian billed
after: the same tokens, the same price table."""

from __future__ import annotations

import json

from harness import SFT_SAMPLE, Pipeline

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
