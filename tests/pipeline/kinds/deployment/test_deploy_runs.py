"""Base-model deployments as a run kind: a marker or a REST body deploys a Bailian model exactly once (PTU too,
which the service names itself), follows it to RUNNING, scales it and tears it down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Pipeline

MARKER = "deployments/team/qwen-flash.deploy.yaml"
SAMPLE = (Path(ROOT) / "samples" / "deploy" / "qwen-flash.deploy.yaml").read_bytes()
MU = {"model": "qwen3-8b", "plan": "mu", "deploy_spec": "MU1", "capacity": 1}


def _deployments(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.bailian("GET", "/api/v1/deployments?page_size=100")["output"]["deployments"])


def _start_from_marker(pipeline: Pipeline, body: bytes = SAMPLE, times: int = 1) -> str:
    pipeline.put(MARKER, body)
    pipeline.deliver_new(times=times)
    return str(pipeline.run_for_key(MARKER)["run_id"])


def test_the_sample_ptu_marker_deploys_the_model_once_and_follows_it_to_running(pipeline: Pipeline) -> None:
    run_id = _start_from_marker(pipeline)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert run["kind"] == "deploy" and run["job_id"] is None and run["deployment_status"] == "RUNNING"
    (deployment,) = _deployments(pipeline)
    assert deployment["deployed_model"] == run["deployed_model"]
    assert deployment["model_name"] == "qwen-flash-2025-07-28" and deployment["plan"] == "ptu"
    assert deployment["name"] == "qwen-flash-ptu" and "suffix" not in deployment
    assert deployment["ptu_capacity"] == {"input_tpm": 10000, "output_tpm": 1000}
    assert run["deployment_expires_at"], "the marker's ttl: 24h schedules the teardown"
    assert run["estimate"]["deployment_rate"]["input_per_1k_tokens"] == 0.002  # the seed's PTU price
    assert pipeline.created()["deployments"] == 1 and pipeline.created()["fine_tunes"] == 0


def test_every_event_delivered_five_times_makes_one_deployment(pipeline: Pipeline) -> None:
    run_id = _start_from_marker(pipeline, times=5)

    run = pipeline.pump(run_id, duplicates=5)

    assert run["stage"] == "DONE", run
    assert pipeline.created()["deployments"] == 1


def test_a_ptu_create_processed_then_dropped_is_recognised_by_its_echo(pipeline: Pipeline) -> None:
    # The service names a PTU deployment: no suffix to find it by, only the model and name it echoes.
    pipeline.fault(method="POST", path="/api/v1/deployments", drop="after", times=1)
    run_id = _start_from_marker(pipeline)

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    assert pipeline.fault_hits() == [1]
    assert pipeline.created()["deployments"] == 1, "the dropped create made it; it was found, not repeated"
    assert [item["deployed_model"] for item in _deployments(pipeline)] == [run["deployed_model"]]


def test_post_runs_deploys_and_the_same_request_is_the_same_run(pipeline: Pipeline) -> None:
    first = pipeline.api("POST", "/runs", {"deploy": MU})
    again = pipeline.api("POST", "/runs", {"deploy": MU})

    assert (first[0], again[0]) == (202, 200), (first, again)
    run_id = first[1]["run"]["run_id"]
    assert again[1]["run"]["run_id"] == run_id and again[1]["created"] is False
    run = pipeline.pump(run_id)
    assert run["stage"] == "DONE", run
    (deployment,) = _deployments(pipeline)
    assert deployment["deploy_spec"] == "MU1" and deployment["deployed_model"].endswith(run["deploy_suffix"])
    assert deployment["name"] == f"bf-{run_id}-1"


@pytest.mark.parametrize(
    ("deploy", "field"),
    [
        ({"model": "qwen3-8b", "plan": "ptu"}, "deploy.ptu_capacity"),
        ({"model": "qwen3-8b", "plan": "mu"}, "deploy.deploy_spec"),
        ({"model": "qwen3-8b", "plan": "xpu"}, "deploy.plan"),
        ({**MU, "colour": "red"}, "deploy.colour"),
        ({**MU, "ttl": "soon"}, "deploy.ttl"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field(pipeline: Pipeline, deploy: Any, field: str) -> None:
    status, answer = pipeline.api("POST", "/runs", {"deploy": deploy})

    assert status == 400, answer
    assert field in answer["error"]["message"]
    assert pipeline.runs() == []


def test_a_bad_marker_is_a_failed_run_naming_the_marker_and_field(pipeline: Pipeline) -> None:
    pipeline.put(MARKER, b"deploy: {model: qwen-flash-2025-07-28, plan: ptu, suffix: abc}\n")
    pipeline.deliver_new()

    (run,) = pipeline.runs()

    assert run["stage"] == "FAILED" and run["kind"] == "deploy"
    assert run["error"]["object"] == MARKER
    assert run["error"]["field"] == "deploy.ptu_capacity"
    assert pipeline.created()["deployments"] == 0


def test_scale_resizes_the_live_deployment_by_its_plan(pipeline: Pipeline) -> None:
    ptu_run = pipeline.pump(_start_from_marker(pipeline))
    mu_run = pipeline.pump(pipeline.api("POST", "/runs", {"deploy": MU})[1]["run"]["run_id"])

    wrong = pipeline.api("POST", f"/runs/{ptu_run['run_id']}/scale", {"capacity": 2})
    scaled_ptu = pipeline.api(
        "POST", f"/runs/{ptu_run['run_id']}/scale", {"ptu_capacity": {"input_tpm": 20000, "output_tpm": 2000}}
    )
    scaled_mu = pipeline.api("POST", f"/runs/{mu_run['run_id']}/scale", {"capacity": 2})

    assert wrong[0] == 400 and "ptu_capacity" in wrong[1]["error"]["message"]
    assert scaled_ptu[0] == 200 and scaled_ptu[1]["run"]["stage"] == "DONE", scaled_ptu
    assert scaled_mu[0] == 200 and scaled_mu[1]["run"]["scaled_to"] == {"capacity": 2}
    by_name = {item["deployed_model"]: item for item in _deployments(pipeline)}
    assert by_name[ptu_run["deployed_model"]]["ptu_capacity"] == {"input_tpm": 20000, "output_tpm": 2000}
    assert by_name[mu_run["deployed_model"]]["capacity"] == 2


def test_a_fine_tune_run_cannot_be_scaled(pipeline: Pipeline) -> None:
    status, body = pipeline.api("POST", "/runs", {"import": {"object_key": "models/x/"}})
    assert status == 202

    answer = pipeline.api("POST", f"/runs/{body['run']['run_id']}/scale", {"capacity": 2})

    assert answer[0] == 409 and "cannot be scaled" in answer[1]["error"]["message"]


def test_teardown_on_request_deletes_the_deployment(pipeline: Pipeline) -> None:
    run = pipeline.pump(_start_from_marker(pipeline))

    status, body = pipeline.api("POST", f"/runs/{run['run_id']}/teardown")

    assert status == 200 and body["run"]["undeployed_at"]
    assert all(item["status"] == "DELETING" for item in _deployments(pipeline))


def test_cancel_while_deploying_deletes_the_deployment(pipeline: Pipeline) -> None:
    run_id = _start_from_marker(pipeline)
    for record in pipeline.new_records():
        pipeline.deliver(record)
    assert pipeline.run(run_id)["run"]["stage"] == "deployment-pending"

    status, body = pipeline.api("POST", f"/runs/{run_id}/cancel")
    run = pipeline.pump(run_id)

    assert status == 200 and run["stage"] == "CANCELED", (body, run)
    assert all(item["status"] == "DELETING" for item in _deployments(pipeline))


def test_a_failed_deployment_is_retried_as_a_new_attempt(pipeline: Pipeline) -> None:
    pipeline.script("deployment")
    run_id = _start_from_marker(pipeline)
    assert pipeline.pump(run_id)["stage"] == "FAILED"

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")
    run = pipeline.pump(run_id)

    assert status == 202 and body["run"]["stage"] == "requested"
    assert run["stage"] == "DONE" and run["attempt"] == 2, run
    assert pipeline.created()["deployments"] == 2


def test_an_image_model_deploys_in_the_capacity_only_form(pipeline: Pipeline) -> None:
    # `emo` takes no plan (the deployment reference's sample: model_name and capacity only).
    status, body = pipeline.api("POST", "/runs", {"deploy": {"model": "emo", "capacity": 1, "suffix": "emo01"}})
    assert status == 202, body

    run = pipeline.pump(body["run"]["run_id"])

    assert run["stage"] == "DONE", run
    (deployment,) = _deployments(pipeline)
    assert deployment["model_name"] == "emo" and "plan" not in deployment
    assert deployment["deployed_model"].endswith("-emo01") and run["estimate"]["deployment_rate"] is None


def test_a_plan_the_region_does_not_offer_is_refused_naming_the_plan(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_REGION", "intl")

    status, answer = pipeline.api("POST", "/runs", {"deploy": MU})

    assert status == 400 and "deploy.plan" in answer["error"]["message"], answer
    assert pipeline.runs() == []
