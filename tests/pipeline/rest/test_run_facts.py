"""What `GET /runs/{id}` and `GET /account` tell an operator beyond a run's state (issue #18 §2), through the real
functions and the emulator: the account's quotas and the waiting line, a fine-tune's progress from its job's logs,
estimate and actual side by side, the deployed model with a call example, what a run still owns, a batch run's
shards."""

from __future__ import annotations

import json

import pytest
from emulator_support import Emulator
from harness import SFT_SAMPLE, Pipeline, http_json

from bailian_flow.pipeline.rest.run_facts import MAX_POINTS, parse_progress


def _facts(pipeline: Pipeline, run_id: str) -> dict:
    status, body = pipeline.api("GET", f"/runs/{run_id}")
    assert status == 200, body
    return dict(body["facts"])


def _advance(pipeline: Pipeline, seconds: float) -> None:
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": seconds})


def _settle(pipeline: Pipeline) -> None:
    for _ in range(4):
        if not pipeline.deliver_new():
            return


def test_a_fine_tune_shows_its_progress_then_its_costs_model_and_what_it_owns(pipeline: Pipeline) -> None:
    key = "datasets/facts/train.jsonl"
    pipeline.put(key + ".flow.yaml", b"model: qwen3-14b\nhyper_parameters: {n_epochs: 2}\n")
    run_id = pipeline.upload(key, SFT_SAMPLE)
    _settle(pipeline)
    assert pipeline.run(run_id)["run"]["stage"] == "training"
    facts = _facts(pipeline, run_id)
    assert facts["costs"]["estimate"]["tokens"] > 0 and facts["costs"]["actual"] is None
    assert facts["costs"]["estimate"]["trained_tokens"] == 2 * facts["costs"]["estimate"]["tokens"]
    assert facts["costs"]["estimate"]["cost"]["currency"] == "USD"
    assert [item["resource"] for item in facts["owns"]] == ["file", "fine-tune job"]

    # Half way through (the emulator's job runs 60 s after its queue): steps, an epoch's validation loss.
    job = pipeline.fine_tune(pipeline.run(run_id)["run"]["job_id"])
    _advance(pipeline, 1)
    while pipeline.fine_tune(job["job_id"])["status"] != "RUNNING":
        _advance(pipeline, 5)
    _advance(pipeline, 35)
    progress = _facts(pipeline, run_id)["progress"]
    assert 10 <= progress["step"] < progress["total_steps"] == 20, progress
    assert progress["epochs"] == 2 and 1.0 <= progress["epoch"] < 2.0
    assert 0 < progress["loss"] < 2 and progress["eval_loss"] is not None
    assert [point["step"] for point in progress["points"]] == list(range(1, progress["step"] + 1))
    losses = [point["loss"] for point in progress["points"]]
    assert losses == sorted(losses, reverse=True)  # the emulator's loss falls step by step

    done = pipeline.pump(run_id, timeout=60)
    assert done["stage"] == "DONE"
    facts = _facts(pipeline, run_id)
    assert "progress" not in facts
    actual = facts["costs"]["actual"]
    assert actual["trained_tokens"] == done["usage"]["tokens"]
    assert actual["cost"] == {"amount": round(actual["trained_tokens"] * 0.0016 / 1000, 6), "currency": "USD"}
    deployment = facts["deployment"]
    assert deployment["model"] == done["deployed_model"]
    assert deployment["base_url"] == f"{pipeline.url}/compatible-mode/v1"
    assert f'"model": "{done["deployed_model"]}"' in deployment["curl"]
    assert "$DASHSCOPE_API_KEY" in deployment["curl"] and "sk-test" not in json.dumps(facts)
    compile(deployment["python"], "example.py", "exec")  # copyable as it is
    owned = {item["resource"]: item["id"] for item in facts["owns"]}
    assert owned.get("deployment") == done["deployed_model"] and "file" not in owned  # files deleted at the end


def test_progress_parsing_is_bounded_and_skips_what_it_does_not_know() -> None:
    lines = [f"{{'step': {step}, 'total_steps': 5000, 'loss': {1 / step:.4f}}}" for step in range(1, 3001)]
    lines += [
        "Saving checkpoint-3000",
        "{'step': 3000, 'epoch': 1.0, 'eval_loss': 0.5}",
        "x" * 100_000,
        "{'step': 'a'}",
    ]
    progress = parse_progress(lines, epochs=2)
    assert progress["step"] == 3000 and progress["epoch"] == 1.0 and progress["eval_loss"] == 0.5
    assert len(progress["points"]) == MAX_POINTS and progress["points"][-1]["step"] == 3000
    assert parse_progress([], None)["points"] == []


def test_the_account_shows_quota_use_and_each_waiting_runs_place(
    emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_json(f"{emulator_reset.url}/_emulator/config", "POST", {"quotas": {"fine_tune_jobs": 1}})
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_QUOTA_FINE_TUNE_JOBS="1")
    first = pipeline.upload("datasets/account/first.jsonl", SFT_SAMPLE)
    _settle(pipeline)
    waiting = [pipeline.upload(f"datasets/account/w{n}.jsonl", SFT_SAMPLE + b"\n" * (n + 1)) for n in range(2)]
    _settle(pipeline)
    pipeline.tick()

    status, account = pipeline.api("GET", "/account")
    assert status == 200, account
    jobs = account["quotas"]["fine-tune-jobs"]
    assert jobs == {"used": 1, "limit": 1, "waiting": 2}, account
    assert account["quotas"]["files"]["limit"] == 100 and account["quotas"]["files"]["bytes_limit"] > 0
    assert account["counted_at"]
    line = [entry for entry in account["line"] if entry["quota"] == "fine-tune-jobs"]
    assert [(entry["run_id"], entry["place"]) for entry in line] == [(waiting[0], 1), (waiting[1], 2)]
    assert line[0]["waits_for"]["quota"] == "fine-tune-jobs" and line[0]["source"] == "datasets/account/w0.jsonl"
    assert pipeline.run(first)["run"]["stage"] == "training"
    assert pipeline.api("GET", "/account", token="wrong")[0] == 401


def test_a_batch_run_shows_its_shards_tokens_and_cost(pipeline: Pipeline) -> None:
    rows = [
        {
            "custom_id": f"q-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
        }
        for n in range(5)
    ]
    run_id = pipeline.upload("batches/facts/questions.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    assert pipeline.pump(run_id, timeout=60)["stage"] == "DONE"
    facts = _facts(pipeline, run_id)
    shards = facts["shards"]
    assert shards["totals"] == {"lines": 5, "completed": 5, "failed": 0, "resubmitted": 0, "pending": 0, "shards": 1}
    assert shards["rows"][0]["model"] == "qwen-plus" and shards["rows"][0]["completed"] == 5
    costs = facts["batch_costs"]
    assert costs["input_tokens"] > 0 and costs["cost"][0]["currency"] == "CNY"
    assert facts["pending_requests"] == {} and facts["costs"] is None


def test_logs_the_api_cannot_read_are_a_note_not_an_error(pipeline: Pipeline) -> None:
    run_id = pipeline.upload("datasets/facts/nologs.jsonl", SFT_SAMPLE)
    _settle(pipeline)
    job_id = pipeline.run(run_id)["run"]["job_id"]
    pipeline.fault(method="GET", path=f"/api/v1/fine-tunes/{job_id}/logs", status=500, times=100)
    status, body = pipeline.api("GET", f"/runs/{run_id}")
    assert status == 200, body
    assert "could not be read" in body["facts"]["progress"]["error"]
    assert body["facts"]["costs"]["estimate"]["tokens"] > 0  # the rest of the run all the same
    assert "sk-test" not in json.dumps(body)


def test_the_account_counts_pending_batch_requests_per_model(pipeline: Pipeline) -> None:
    rows = [
        {
            "custom_id": f"p-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"question {n}"}]},
        }
        for n, model in enumerate(["qwen-plus"] * 3 + ["qwen-turbo"] * 2)
    ]
    pipeline.script("batch", "SLOW:1000", count=2)  # both shards stay in progress
    run_id = pipeline.upload("batches/facts/pending.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    _settle(pipeline)
    assert pipeline.run(run_id)["run"]["stage"] == "batch-running"
    pipeline.tick()  # the hint now knows the run and the shards it follows ...
    pipeline.tick()  # ... which the next tick reads in one list of batches
    status, account = pipeline.api("GET", "/account")
    assert status == 200, account
    assert account["pending_requests"] == {"qwen-plus": 3, "qwen-turbo": 2}, account
    # The tick read the list of batches for the run's shards: the parallel-batch quota's use came with it.
    assert account["quotas"]["batches"] == {"used": 2, "limit": 2, "waiting": 0}, account
    facts = _facts(pipeline, run_id)
    assert facts["shards"]["totals"]["pending"] == 5 and len(facts["shards"]["rows"]) == 2
    assert {item["resource"] for item in facts["owns"]} == {"batch"}


def test_a_long_job_shows_the_newest_page_of_its_logs(pipeline: Pipeline) -> None:
    key = "datasets/facts/long.jsonl"
    pipeline.put(key + ".flow.yaml", b"hyper_parameters: {n_epochs: 100}\n")  # 1,000 steps: ~2,000 log lines
    run_id = pipeline.upload(key, SFT_SAMPLE)
    _settle(pipeline)
    job_id = pipeline.run(run_id)["run"]["job_id"]
    while pipeline.fine_tune(job_id)["status"] != "RUNNING":
        _advance(pipeline, 5)
    _advance(pipeline, 55)
    logs = pipeline.bailian("GET", f"/api/v1/fine-tunes/{job_id}/logs?offset=0&line=1")["output"]["total"]
    assert logs > 1000
    progress = _facts(pipeline, run_id)["progress"]
    assert progress["total_steps"] == 1000 and progress["step"] > 900, progress
    assert len(progress["points"]) == MAX_POINTS and progress["points"][-1]["step"] == progress["step"]
    assert progress["points"][0]["step"] > 1  # the oldest lines are past the page read
