"""What each handler's first invocation loads, pinned (issue #9 §3, cold start): a module a cold start does not need
stays out, so the trimming does not rot.

Each handler runs once in a fresh interpreter, against the emulator, chained as the triggers chain them (a new
dataset -> its file is ready -> the job has finished -> it succeeded -> `GET /runs`), and reports `sys.modules`
after its call. Not a timing test: the figures are bench/cold_start.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import FUNCTIONS, ROOT, Pipeline, http_json

CHILD = """
import json, sys
sys.path.insert(0, {code!r})
import index
from bailian_flow.fc._context import make_context
result = index.handler({event!r}, make_context({name!r}, request_id="imports-probe"))
print(json.dumps({{"modules": sorted(sys.modules), "result": result}}))
"""

# Never on any handler's path: the CLI and local stack, vendor SDKs, the sidecar parser, the emulator.
EVERYWHERE = {
    "yaml",
    "click",
    "rich",
    "dashscope",
    "openai",
    # The OSS SDK and what it pulls in: the store signs its requests itself on aiohttp.
    "alibabacloud_oss_v2",
    "requests",
    "urllib3",
    "Crypto",
    "bailian_flow.cli",
    "bailian_flow.local",
    "bailian_flow.emulator",
}
# Batch inference, on a fine-tune run's path.
BATCH = {
    "bailian_flow.pipeline.kinds.batch.stages",
    "bailian_flow.pipeline.kinds.batch.acts",
    "bailian_flow.pipeline.kinds.batch.batch_lines",
    "bailian_flow.pipeline.kinds.batch.batch_results",
    "bailian_flow.pipeline.kinds.batch.batch_unique",
    "bailian_flow.client.resources.batches",
    "bailian_flow.client.models.batches",
}
# Ingest: validating and uploading a dataset, and its cost estimate.
INGEST = {
    "bailian_flow.pipeline.kinds.fine_tune.upload",
    "bailian_flow.pipeline.kinds.fine_tune.ingest",
    "bailian_flow.validate",
    "bailian_flow.estimate",
    "msgspec",
}
DELIVERY = {"bailian_flow.pipeline.delivery.stages", "bailian_flow.pipeline.delivery.lifecycle"}
# The other kinds of issue #16, on a text fine-tune run's path: their stage code, and the media validators.
OTHER_KINDS = {
    "bailian_flow.pipeline.kinds.deployment.stages",
    "bailian_flow.pipeline.kinds.deployment.marker",
    "bailian_flow.pipeline.kinds.deployment.state",
    "bailian_flow.pipeline.kinds.media_fine_tune.upload",
    "bailian_flow.pipeline.kinds.media_fine_tune.rules",
    "bailian_flow.validate._zip",
    "bailian_flow.validate._zipdir",
    "bailian_flow.validate._deploy",
}
# Opening a run for a new object: on_upload's (and a scan's that finds an orphan, which this chain has none of).
INTAKE = {"bailian_flow.pipeline.protocol.intake", "bailian_flow.pipeline.kinds.import_only.marker"}
NOT_LOADED: dict[str, set[str]] = {
    "on_upload": EVERYWHERE
    | BATCH
    | DELIVERY
    | OTHER_KINDS
    | {"bailian_flow.fc._http", "bailian_flow.pipeline.rest.api"},
    "on_file_ready": EVERYWHERE
    | BATCH
    | OTHER_KINDS
    | INGEST
    | INTAKE
    | DELIVERY
    | {"bailian_flow.fc._http", "bailian_flow.pipeline.rest.api", "bailian_flow.client.resources.files"},
    "on_timer": EVERYWHERE
    | BATCH
    | INGEST
    | INTAKE
    | OTHER_KINDS
    | {"bailian_flow.fc._http", "bailian_flow.pipeline.rest.api"},
    "on_success": EVERYWHERE
    | BATCH
    | INGEST
    | INTAKE
    | OTHER_KINDS
    | {"bailian_flow.fc._http", "bailian_flow.pipeline.rest.api"},
    # The REST API reads runs: no stage code, no Bailian resource, no OSS event parsing.
    "webhook": EVERYWHERE
    | BATCH
    | OTHER_KINDS
    | INGEST
    | INTAKE
    | DELIVERY
    # ... nor the Bailian client itself (made on first use: a read of runs never calls Bailian).
    | {
        "bailian_flow.pipeline.protocol.steps",
        "bailian_flow.fc._oss",
        "bailian_flow.client._base",
        "bailian_flow.client.resources",
    },
}


def first_invocation(name: str, event: bytes) -> tuple[set[str], Any]:
    code = CHILD.format(code=str(ROOT / "functions" / name), name=name, event=event)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return set(answer["modules"]), answer["result"]


def loaded_of(modules: set[str], names: set[str]) -> set[str]:
    """Which of `names` (packages count with their submodules) are loaded."""
    return {name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)}


def marker(pipeline: Pipeline, suffix: str) -> bytes:
    found = [r for r in pipeline.new_records() if r["oss"]["object"]["key"].endswith(suffix)]
    assert found, f"no {suffix} event"
    return json.dumps({"events": [found[-1]]}).encode()


def test_each_first_invocation_loads_only_what_its_path_needs(pipeline: Pipeline) -> None:
    key = "datasets/imports-probe/train.jsonl"
    pipeline.put(key, (Path(ROOT) / "samples" / "sft" / "train.jsonl").read_bytes())
    [record] = [r for r in pipeline.new_records() if r["oss"]["object"]["key"] == key]
    seen: dict[str, set[str]] = {}
    results: dict[str, Any] = {}

    def run(name: str, event: bytes) -> None:
        seen[name], results[name] = first_invocation(name, event)

    run("on_upload", json.dumps({"events": [record]}).encode())
    run("on_file_ready", marker(pipeline, "-file-ready.json"))
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 7200})
    run("on_timer", json.dumps({"triggerTime": "2026-11-30T00:00:00Z", "triggerName": "t", "payload": "p"}).encode())
    run("on_success", marker(pipeline, "-job-succeeded.json"))
    path = "/runs"
    http_event = {
        "version": "v1",
        "rawPath": path,
        "body": "",
        "isBase64Encoded": False,
        "headers": {"authorization": "Bearer test-api-token-4d1f"},
        "queryParameters": {},
        "requestContext": {"http": {"method": "GET", "path": path}, "requestId": "imports-probe"},
    }
    run("webhook", json.dumps(http_event).encode())

    # The chain really ran: each handler did its stage's work (a probe of idle handlers would prove nothing).
    assert [run["stage"] for run in results["on_upload"]["runs"]] == ["file-ready"]
    assert [run["stage"] for run in results["on_file_ready"]["runs"]] == ["training"]
    assert results["on_timer"]["finished"] or results["on_timer"]["polled"]
    assert [run["stage"] for run in results["on_success"]["runs"]] == ["deployment-pending"]
    assert results["webhook"]["statusCode"] == 200
    assert set(seen) == set(FUNCTIONS)
    # ... and loaded the code of its stage (the probe sees lazily imported modules).
    assert "bailian_flow.pipeline.kinds.fine_tune.upload" in seen["on_upload"]
    assert "bailian_flow.pipeline.training.stages" in seen["on_file_ready"]
    assert "bailian_flow.pipeline.delivery.stages" in seen["on_success"]
    for name, forbidden in NOT_LOADED.items():
        assert not loaded_of(seen[name], forbidden), f"{name} loaded {sorted(loaded_of(seen[name], forbidden))}"


def test_every_lazily_named_step_and_resume_resolves() -> None:
    import inspect

    from bailian_flow.pipeline.protocol import kinds, steps

    for spec in kinds.all_specs():
        for stage, name in spec.facts.items():
            assert inspect.iscoroutinefunction(steps.step_of(spec.name, stage)), f"{spec.name} {stage}: {name}"
        for stage in spec.intents:
            assert inspect.iscoroutinefunction(steps.resume_of(spec.name, stage)), f"{spec.name} {stage}"
        for hook in spec.hooks:
            assert callable(spec.required(hook)), f"{spec.name} hook {hook}"
        for opener in spec.openers:
            assert inspect.iscoroutinefunction(kinds.named(opener.open)), f"{spec.name} opener {opener.open}"
        for quota in spec.quotas.values():
            assert inspect.iscoroutinefunction(kinds.named(quota.counter)), f"{spec.name} counter {quota.counter}"
        if spec.state_model is not None:
            assert issubclass(kinds.state_model(spec.name), steps.RunState)


def test_fc_names_load_on_first_use_and_all_resolve() -> None:
    import bailian_flow.fc as fc

    for name in fc.__all__:
        assert getattr(fc, name) is not None, name
    assert sorted(fc.__all__) == sorted(dir(fc))
    with pytest.raises(AttributeError, match="no_such_name"):
        fc.no_such_name  # noqa: B018
