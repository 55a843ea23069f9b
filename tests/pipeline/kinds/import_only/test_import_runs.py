"""Import-only runs: custom weights already in OSS → import → deploy, with the same exactly-once guarantees."""

from __future__ import annotations

import time
from typing import Any

import pytest
from harness import Pipeline

MARKER = "imports/team/my-lora.import.yaml"
MARKER_BODY = b"""
import: {object_key: models/my-lora/, model_name: qwen3-8b, weight_type: lora}
settings:
  on_success: {capacity: 2, deployment_ttl: 7d}
"""
REQUEST = {"import": {"object_key": "models/my-lora/", "model_name": "qwen3-8b"}, "settings": {"job_retention": "keep"}}


def _imports(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.bailian("GET", "/api/v1/custom_models/import?page_size=100")["output"]["list"])


def _start_from_marker(pipeline: Pipeline, times: int = 1) -> str:
    pipeline.put(MARKER, MARKER_BODY)
    pipeline.deliver_new(times=times)
    matches = [run for run in pipeline.runs() if run["source"].get("key") == MARKER]
    assert len(matches) == 1, matches
    return str(matches[0]["run_id"])


def test_a_marker_imports_the_weights_and_deploys_them(pipeline: Pipeline) -> None:
    run_id = _start_from_marker(pipeline)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert run["kind"] == "import" and run["job_id"] is None
    assert run["deployed_model"].startswith(run["imported_model"])
    (job,) = _imports(pipeline)
    assert job["display_name"] == f"bf-{run_id}-1"
    assert job["storage_info"] == {"bucket_name": "flow-test", "object_key": "models/my-lora/"}
    deployment = pipeline.bailian("GET", f"/api/v1/deployments/{run['deployed_model']}")["output"]
    assert deployment["capacity"] == 2 and run["deployment_expires_at"]
    assert pipeline.created()["fine_tunes"] == pipeline.created()["files"] == 0
    stages = [entry["stage"] for entry in pipeline.history(run_id)]
    assert stages[0] == "job-succeeded" and stages.index("importing") < stages.index("deploying")
    status, listed = pipeline.api("GET", "/runs?kind=import")
    assert status == 200 and [item["run_id"] for item in listed["runs"]] == [run_id]


def test_every_event_delivered_five_times_concurrently_makes_one_import_and_one_deployment(
    pipeline: Pipeline,
) -> None:
    run_id = _start_from_marker(pipeline, times=5)

    run = pipeline.pump(run_id, duplicates=5)

    assert run["stage"] == "DONE", run
    created = pipeline.created()
    assert (created["imports"], created["deployments"]) == (1, 1)


def test_an_import_create_processed_then_dropped_is_found_by_its_name(pipeline: Pipeline) -> None:
    pipeline.fault(method="POST", path="/api/v1/custom_models/import", drop="after", times=1)
    run_id = _start_from_marker(pipeline)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert pipeline.fault_hits() == [1]
    assert pipeline.created()["imports"] == 1, "the dropped create made the import; it was found, not repeated"


def test_post_runs_starts_an_import_run_and_the_same_request_names_the_same_run(pipeline: Pipeline) -> None:
    first = pipeline.api("POST", "/runs", REQUEST)
    again = pipeline.api("POST", "/runs", REQUEST)

    assert (first[0], again[0]) == (202, 200)
    run_id = first[1]["run"]["run_id"]
    assert again[1]["run"]["run_id"] == run_id and again[1]["created"] is False
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE" and run["kind"] == "import"
    assert run["settings"]["job_retention"] == "keep"
    assert pipeline.created()["imports"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"import": {"model_name": "qwen3-8b"}}, "import.object_key"),
        ({"import": {"object_key": "models/no-slash"}}, "import.object_key"),
        ({"import": "models/x/"}, "import"),
        ({"import": {"object_key": "models/x/"}, "setings": {}}, "setings"),
        ({"import": {"object_key": "models/x/"}, "settings": {"on_success": {"plan": "mu"}}}, "deploy_spec"),
        # PTU serves Bailian's own base models only, never imported weights (service-contract.md#C22).
        ({"import": {"object_key": "models/x/"}, "settings": {"on_success": {"plan": "ptu"}}}, "on_success.plan"),
    ],
)
def test_a_bad_import_request_is_a_400_naming_the_field(pipeline: Pipeline, body: Any, field: str) -> None:
    status, answer = pipeline.api("POST", "/runs", body)

    assert status == 400
    assert field in answer["error"]["message"]
    assert pipeline.runs() == []


def test_a_bad_marker_is_a_failed_run_naming_the_marker_and_field(pipeline: Pipeline) -> None:
    pipeline.put(MARKER, b"import: {model_name: qwen3-8b}\n")
    pipeline.deliver_new()

    (run,) = pipeline.runs()

    assert run["stage"] == "FAILED" and run["kind"] == "import"
    assert run["error"]["object"] == MARKER
    assert run["error"]["field"] == "import.object_key"
    assert pipeline.created()["imports"] == 0


def test_a_failed_import_run_is_retried_from_the_import(pipeline: Pipeline) -> None:
    pipeline.script("import")
    run_id = _start_from_marker(pipeline)
    assert pipeline.pump(run_id)["stage"] == "FAILED"

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")
    run = pipeline.pump(run_id)

    assert status == 202 and body["run"]["stage"] == "job-succeeded"
    assert run["stage"] == "DONE"
    assert [job["display_name"] for job in _imports(pipeline)] == [f"bf-{run_id}-2", f"bf-{run_id}-1"]


def test_a_marker_whose_event_never_came_is_adopted(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "0")
    assert pipeline.tick()["adopted"] == [], "the first tick only starts watching"
    time.sleep(2.1)  # listings have whole seconds; the cursor keeps one second of overlap
    pipeline.put(MARKER, MARKER_BODY)
    pipeline.new_records()  # the marker's event is lost for good

    (adopted,) = pipeline.tick()["adopted"]

    monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "600")
    run = pipeline.pump(adopted)
    assert (run["kind"], run["stage"], run["source"]["key"]) == ("import", "DONE", MARKER)
    assert pipeline.created()["imports"] == 1
