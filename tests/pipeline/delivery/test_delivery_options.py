"""Every delivery option the service has: PTU, capacity, rpm/tpm limits, the checkpoint to deploy."""

from __future__ import annotations

from typing import Any

from harness import SFT_SAMPLE, Pipeline

KEY = "datasets/options/train.jsonl"


def _deployment(pipeline: Pipeline, name: str) -> dict[str, Any]:
    return dict(pipeline.bailian("GET", f"/api/v1/deployments/{name}")["output"])


def _run_with(pipeline: Pipeline, sidecar: str) -> dict[str, Any]:
    pipeline.put(KEY + ".flow.yaml", sidecar.encode())
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    return pipeline.pump(run_id)


def test_ptu_for_a_fine_tune_is_refused_when_the_run_opens_naming_the_setting(pipeline: Pipeline) -> None:
    # PTU serves Bailian's own base models only (service-contract.md#C22): refused before training is paid for.
    ptu = {"on_success": {"plan": "ptu", "ptu_capacity": {"input_tpm": 100000, "output_tpm": 20000}}}
    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": ptu})
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-plan": "ptu"})

    assert status == 400 and "on_success.plan" in body["error"]["message"], body
    assert "base models only" in body["error"]["message"]
    run = pipeline.run(run_id)["run"]
    assert run["stage"] == "FAILED"
    assert run["error"]["field"] == "on_success.plan"
    assert pipeline.created()["files"] == 0 and pipeline.created()["fine_tunes"] == 0


def test_capacity_and_limits_are_applied_to_the_deployment(pipeline: Pipeline) -> None:
    run = _run_with(pipeline, "on_success: {capacity: 2, rpm_limit: 600, tpm_limit: 50000}\n")

    assert run["stage"] == "DONE", run
    deployment = _deployment(pipeline, run["deployed_model"])
    assert (deployment["capacity"], deployment["rpm_limit"], deployment["tpm_limit"]) == (2, 600, 50000)
    assert "limits rpm=600 tpm=50000" in pipeline.history(run["run_id"])[-1]["changed"]


def test_limits_through_metadata_and_a_refused_limit_is_a_warning(pipeline: Pipeline) -> None:
    pipeline.fault(method="PUT", path="/api/v1/deployments/*/update", status=400, code="InvalidParameter")
    run_id = pipeline.upload(KEY, SFT_SAMPLE, metadata={"flow-rpm-limit": "30"})

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", "the model is deployed and serving; the limit is not worth undoing that"
    assert any("rpm/tpm limits not applied" in warning for warning in run["warnings"])
    assert pipeline.fault_hits() == [1]


def test_a_chosen_checkpoint_is_exported_then_deployed(pipeline: Pipeline) -> None:
    run = _run_with(pipeline, "on_success: {checkpoint: checkpoint-10}\n")

    assert run["stage"] == "DONE", run
    checkpoints = pipeline.bailian("GET", f"/api/v1/fine-tunes/{run['job_id']}/checkpoints")["output"]
    exported = next(item for item in checkpoints if item["checkpoint"] == "checkpoint-10")
    deployment = _deployment(pipeline, run["deployed_model"])
    assert deployment["model_name"] == exported["model_name"] != run["finetuned_output"]


def test_an_unknown_checkpoint_fails_the_run_listing_the_ones_there_are(pipeline: Pipeline) -> None:
    run = _run_with(pipeline, "on_success: {checkpoint: checkpoint-999}\n")

    assert run["stage"] == "FAILED"
    assert run["error"]["code"] == "NoCheckpoint" and run["error"]["field"] == "on_success.checkpoint"
    assert "checkpoint-10" in run["error"]["reason"]
    assert pipeline.created()["deployments"] == 0


def test_a_malformed_checkpoint_name_is_a_settings_error(pipeline: Pipeline) -> None:
    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": {"on_success": {"checkpoint": "x"}}})

    assert status == 400 and "on_success.checkpoint" in body["error"]["message"]
