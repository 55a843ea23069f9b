"""Every stage's failure path through the real functions: a clear FAILED run, or a raise where FC should retry.

Failures are produced by the emulator the way the service produces them (scripted job, deployment and import
outcomes, 5xx answers; a full quota is not a failure, see test_admission.py), never by patching our own code.
"""

from __future__ import annotations

import time

import pytest
from harness import SFT_SAMPLE, Pipeline

from bailian_flow.client.errors import InternalServerError

KEY = "datasets/support/train.jsonl"
IMPORT_SIDECAR = b"on_success:\n  action: import\n  import: {object_key: models/x/}\n"


def _stages(pipeline: Pipeline, run_id: str) -> list[str]:
    return [entry["stage"] for entry in pipeline.history(run_id)]


def _drive_to(pipeline: Pipeline, run_id: str, stage: str, *, timeout: float = 15.0) -> dict[str, object]:
    """Deliver events (no timer ticks) until the run reaches `stage`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline.deliver_new()
        run = pipeline.run(run_id)["run"]
        if run["stage"] == stage:
            return dict(run)
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not reach {stage}: {pipeline.run(run_id)}")


# --- Bailian's own verdicts: job, deployment and import end FAILED --------------------------------------------


def test_a_failed_fine_tune_fails_the_run_naming_the_job(pipeline: Pipeline) -> None:
    pipeline.script("fine_tune")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    error = run["error"]
    assert error["code"] == "JobFailed"
    assert error["retryable"] is True
    assert run["job_id"] and run["job_id"] in error["reason"]
    assert "FAILED" in error["reason"]
    # The job object carries no reason; the run quotes the last line of the job's log instead.
    logs = pipeline.bailian("GET", f"/api/v1/fine-tunes/{run['job_id']}/logs?offset=0&line=1000")["output"]["logs"]
    assert logs[-1].strip() in error["reason"]
    assert pipeline.fine_tune(run["job_id"])["status"] == "FAILED"
    assert pipeline.created()["deployments"] == 0
    assert _stages(pipeline, run_id)[-1] == "failed"
    assert pipeline.tick()["active"] == 0, "a failed run is no longer polled"


def test_a_failed_deployment_fails_the_run_naming_the_deployment(pipeline: Pipeline) -> None:
    pipeline.script("deployment")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    error = run["error"]
    assert error["code"] == "DeploymentFailed"
    assert error["retryable"] is True
    assert run["deployed_model"] and run["deployed_model"] in error["reason"]
    assert run["finetuned_output"], "training itself succeeded"
    created = pipeline.created()
    assert (created["fine_tunes"], created["deployments"]) == (1, 1)


def test_a_failed_import_fails_the_run_with_the_service_error_code(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", IMPORT_SIDECAR)
    pipeline.script("import")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    error = run["error"]
    assert error["code"] == "ModelFileInvalid"
    assert error["retryable"] is True
    assert run["import_job_id"] and run["import_job_id"] in error["reason"]
    assert "incomplete or unreadable" in error["reason"], "the service's own message is quoted"
    assert "importing" in _stages(pipeline, run_id)
    created = pipeline.created()
    assert (created["imports"], created["deployments"]) == (1, 0)


# --- a 5xx on create: raise for FC to retry; the retry makes exactly one job ----------------------------------


def test_service_unavailable_on_create_raises_and_fc_retry_makes_one_job(pipeline: Pipeline) -> None:
    # More 503s than the client retries: the invocation itself must fail so that FC retries it.
    pipeline.fault(
        method="POST",
        path="/api/v1/fine-tunes",
        status=503,
        code="ServiceUnavailable",
        message="busy",
        times=4,
    )
    pipeline.put(KEY, SFT_SAMPLE)
    pipeline.deliver_new()
    ready = [r for r in pipeline.new_records() if r["oss"]["object"]["key"].endswith("-file-ready.json")]
    assert len(ready) == 1
    run_id = pipeline.run_for_key(KEY)["run_id"]

    with pytest.raises(InternalServerError) as raised:
        pipeline.invoke("on_file_ready", {"events": ready}, request_id="req-fc-1")
    assert raised.value.status == 503
    assert pipeline.fault_hits() == [4]
    run = pipeline.run(run_id)["run"]
    assert run["stage"] == "starting-job", "the intent stays for the retry; the run is not failed"
    assert run["error"] is None
    assert pipeline.created()["fine_tunes"] == 0

    # FC retries the same invocation (same request id) once Bailian is back.
    pipeline.invoke("on_file_ready", {"events": ready}, request_id="req-fc-1")
    assert pipeline.run(run_id)["run"]["stage"] == "training"
    assert pipeline.pump(run_id)["stage"] == "DONE"
    assert pipeline.created()["fine_tunes"] == 1


# --- retry and cancel through the REST API ---------------------------------------------------------------------


def test_retry_of_a_failed_training_uploads_again_and_starts_job_two(pipeline: Pipeline) -> None:
    pipeline.script("fine_tune")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    failed = pipeline.pump(run_id)
    assert failed["stage"] == "FAILED"
    first_job = failed["job_id"]

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")

    assert status == 202, body
    # The failed job's file was deleted when the job ended (the file quota is the account's): upload again.
    assert body["run"]["stage"] == "requested"
    assert body["run"]["attempt"] == 2
    assert body["run"]["error"] is None
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    assert run["attempt"] == 2
    assert run["job_name"] == f"bf-{run_id}-2"
    assert run["job_id"] != first_job
    assert run["file_id"] != failed["file_id"]
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (2, 2, 1)


def test_retry_of_a_failed_deployment_redeploys_under_a_new_suffix(pipeline: Pipeline) -> None:
    pipeline.script("deployment")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    failed = pipeline.pump(run_id)
    assert failed["stage"] == "FAILED"

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")

    assert status == 202, body
    assert body["run"]["stage"] == "job-succeeded"
    assert body["run"]["attempt"] == 2
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    assert run["deploy_suffix"] != failed["deploy_suffix"]
    assert run["deployed_model"] != failed["deployed_model"]
    assert run["deployed_model"].endswith(run["deploy_suffix"])
    assert run["job_id"] == failed["job_id"], "training is not repeated"
    created = pipeline.created()
    assert (created["fine_tunes"], created["deployments"]) == (1, 2)


def test_cancel_of_a_training_run_cancels_the_fine_tune(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    training = _drive_to(pipeline, run_id, "training")

    status, body = pipeline.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200, body
    assert body["run"]["stage"] == "CANCELED"
    assert pipeline.fine_tune(training["job_id"])["status"] in ("CANCELING", "CANCELED")
    # Later ticks and deliveries change nothing: no deployment, the run stays canceled.
    pipeline.pump(timeout=10)
    assert pipeline.run(run_id)["run"]["stage"] == "CANCELED"
    assert pipeline.created()["deployments"] == 0


# --- what happens on success --------------------------------------------------------------------------------


def test_on_success_none_ends_after_training_without_a_deployment(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"on_success: {action: none}\n")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert run["finetuned_output"]
    assert run["deployed_model"] is None
    assert pipeline.created()["deployments"] == 0
    assert "deploying" not in _stages(pipeline, run_id)


def test_on_success_import_imports_then_deploys_the_imported_model(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", IMPORT_SIDECAR)
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert run["imported_model"], run
    assert run["deployed_model"].startswith(run["imported_model"]), "the imported weights are what is deployed"
    stages = _stages(pipeline, run_id)
    assert stages.index("importing") < stages.index("import-running") < stages.index("deploying")
    imports = pipeline.bailian("GET", "/api/v1/custom_models/import")["output"]["list"]
    assert [item["storage_info"]["object_key"] for item in imports] == ["models/x/"]
    created = pipeline.created()
    assert (created["imports"], created["deployments"]) == (1, 1)


def test_retry_after_fixing_the_sidecar_rereads_the_settings(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", b"on_success: {action: none, capacity: 0}\n")
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    assert pipeline.run(run_id)["run"]["error"]["code"] == "InvalidSettings"
    pipeline.put(KEY + ".flow.yaml", b"on_success: {action: none}\n")

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")

    assert status == 202, body
    assert (body["run"]["stage"], body["run"]["attempt"]) == ("requested", 2)
    assert body["run"]["settings"]["on_success"]["action"] == "none"
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    assert pipeline.created()["deployments"] == 0


def test_retry_of_a_run_with_no_source_is_refused(pipeline: Pipeline) -> None:
    bad = pipeline.invoke("on_upload", b"{}")["runs"][0]

    status, body = pipeline.api("POST", f"/runs/{bad['run_id']}/retry")

    assert status == 409, body
    assert "no source" in body["error"]["message"]


def test_a_deployment_deleted_from_under_the_run_fails_it(pipeline: Pipeline) -> None:
    run_id = pipeline.upload("datasets/vanishing/train.jsonl", SFT_SAMPLE)
    deadline = time.monotonic() + 30
    while pipeline.run(run_id)["run"]["stage"] != "deployment-pending":
        assert time.monotonic() < deadline, pipeline.run(run_id)
        for record in pipeline.new_records():
            pipeline.deliver(record)
        pipeline.tick()
    deployed = pipeline.run(run_id)["run"]["deployed_model"]
    pipeline.bailian("DELETE", f"/api/v1/deployments/{deployed}")

    while (run := pipeline.run(run_id)["run"])["stage"] != "FAILED":
        assert time.monotonic() < deadline, run
        pipeline.tick()
        time.sleep(0.1)

    assert run["error"]["code"] == "NotFound"
    assert run["error"]["reason"] == f"deployment {deployed} no longer exists"
