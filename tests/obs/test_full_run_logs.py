"""Every log line of a full run, as the functions write them on FC: JSON with the context fields, one summary line
per invocation, the timer's metrics line, and no key or token anywhere (issue #18 §3, "Proof")."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bailian_flow import obs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))  # the functions' harness

from harness import API_TOKEN, FUNCTIONS, SFT_SAMPLE, Pipeline

KEY = "datasets/obs/train.jsonl"
BATCH_KEY = "batches/obs/questions.jsonl"


@pytest.fixture
def on_fc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What FC sets (a function name), and every line at DEBUG: the client's request logs are checked too."""
    monkeypatch.setenv("FC_FUNCTION_NAME", "bailian-flow")
    monkeypatch.setenv("BAILIAN_FLOW_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "CAISsts0token0for0this0test0only0000000")
    monkeypatch.setenv("BAILIAN_FLOW_CALLBACK_SECRET", "callback-secret-for-the-test")
    yield
    obs.unconfigure()
    logging.getLogger("bailian_flow").setLevel(logging.NOTSET)


def _lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


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


def test_a_full_run_logs_json_lines_with_context_and_no_secret(
    on_fc: None, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    batch_id = pipeline.upload(BATCH_KEY, _batch_input(3))
    assert pipeline.pump(run_id)["stage"] == "DONE"
    assert pipeline.pump(batch_id)["stage"] == "DONE"
    assert pipeline.api("GET", f"/runs/{run_id}")[0] == 200
    assert pipeline.api("GET", "/runs", token="wrong-token-value-0000")[0] == 401

    out = capsys.readouterr()
    lines = _lines(out.out)
    assert not out.err.strip(), out.err[-2000:]  # nothing reached the runtime's own handler
    for line in lines:
        assert {"time", "level", "logger", "event", *obs.CONTEXT_FIELDS} <= set(line), line
        assert line["function"] in FUNCTIONS and line["request_id"], line  # the context's name wins

    summaries = [line for line in lines if line.get("summary")]
    # One per invocation: the pump invoked each function at least once, the REST API twice.
    assert {"outcome", "seconds", "bailian_calls", "oss_reads", "oss_writes", "did"} <= set(summaries[0])
    assert len({line["request_id"] for line in summaries}) == len(summaries)
    assert len({line["request_id"] for line in lines}) == len(summaries), "a line outside any invocation"
    statuses = [line["did"].get("status") for line in summaries if "status" in line["did"]]
    assert statuses[-2:] == [200, 401]
    started = [run for line in summaries for run in line["did"].get("runs", [])]
    assert {run["run_id"] for run in started} >= {run_id, batch_id}
    ticks = [line for line in summaries if "active" in line["did"]]
    assert ticks and all(isinstance(line["bailian_calls"], int) for line in ticks)
    metrics = [line for line in lines if line["event"] == "metrics"]
    assert len(metrics) == len(ticks) and all(line["metric"] == "tick" for line in metrics)

    text = out.out
    for secret in ("sk-test-pipeline", "test-secret", API_TOKEN, "wrong-token-value-0000", "CAISsts0token0for0this"):
        assert secret not in text
    assert "callback-secret-for-the-test" not in text
    assert "Bearer " not in text.replace("Bearer ***", "")
