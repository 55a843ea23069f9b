"""Deployments on the emulator: deployable models, create validation, conflicts, lifecycle, scale, delete."""

from __future__ import annotations

from typing import Any

import pytest
from core_api import Api


async def deploy(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("model_name", "qwen3-14b")
    body.setdefault("capacity", 1)
    status, answer = await api.native("POST", "/deployments", json=body)
    assert status == 200, answer
    output: dict[str, Any] = answer["output"]
    return output


async def get(api: Api, deployed_model: str) -> dict[str, Any]:
    status, answer = await api.native("GET", f"/deployments/{deployed_model}")
    assert status == 200, answer
    output: dict[str, Any] = answer["output"]
    return output


async def test_deployable_models_include_base_models_and_succeeded_fine_tunes(api: Api) -> None:
    job = await api.create_fine_tune()
    _, body = await api.native("GET", "/deployments/models", params={"page_size": 200})
    models = {item["model_name"]: item for item in body["output"]["models"]}
    assert models["qwen3-32b"]["base_capacity"] == 2
    before = set(models)
    await api.advance(80)
    _, answer = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    output = answer["output"]["finetuned_output"]
    assert output not in before
    _, body = await api.native("GET", "/deployments/models", params={"page_size": 200})
    models = {item["model_name"]: item for item in body["output"]["models"]}
    assert models[output]["base_capacity"] == 1
    assert body["output"]["total"] == len(models)


async def test_create_pending_then_running_with_ready_capacity(api: Api) -> None:
    created = await deploy(api, capacity=2, plan="mu", deploy_spec="MU1")
    assert created["status"] == "PENDING"
    assert (created["capacity"], created["ready_capacity"], created["base_capacity"]) == (2, 0, 1)
    assert created["model_name"] == created["base_model"] == "qwen3-14b"
    assert created["deployed_model"].startswith("qwen3-14b-")
    for key in ("gmt_create", "gmt_modified", "workspace_id", "charge_type", "creator", "modifier"):
        assert created[key], key
    await api.advance(19)
    assert (await get(api, created["deployed_model"]))["status"] == "PENDING"
    await api.advance(1)
    running = await get(api, created["deployed_model"])
    assert (running["status"], running["ready_capacity"]) == ("RUNNING", 2)
    assert (await api.state())["created"]["deployments"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"model_name": "no-such-model", "capacity": 1}, 404, "NotFound", "Model: no-such-model not found!"),
        ({"model_name": "qwen3-32b", "capacity": 3}, 400, "InvalidParameter", "Invalid capacity (3)"),
        ({"model_name": "qwen3-14b", "capacity": 0}, 400, "InvalidParameter", "Invalid capacity (0)"),
        ({"model_name": "qwen3-14b", "capacity": 1000}, 400, "InvalidParameter", "Invalid capacity (1000)"),
        ({"model_name": "qwen3-14b", "capacity": 1, "suffix": "toolong123"}, 400, "InvalidParameter", "suffix"),
        ({"model_name": "qwen3-14b", "capacity": 1, "plan": "mu"}, 400, "InvalidParameter", "deploy_spec"),
        ({"model_name": "qwen3-14b", "capacity": 1, "plan": "ptu"}, 400, "InvalidParameter", "ptu_capacity"),
        ({"model_name": "qwen3-14b", "capacity": 1, "plan": "gold"}, 400, "InvalidParameter", "plan"),
        ({"capacity": 1}, 400, "InvalidParameter", "model_name"),
    ],
)
async def test_create_rejects_invalid_requests(
    api: Api, body: dict[str, Any], status: int, code: str, message: str
) -> None:
    got, answer = await api.native("POST", "/deployments", json=body)
    assert (got, answer["code"]) == (status, code), answer
    assert message in answer["message"]
    assert (await api.state())["created"]["deployments"] == 0


async def test_ptu_plan_with_capacity_is_accepted(api: Api) -> None:
    created = await deploy(api, plan="ptu", ptu_capacity={"input_tpm": 1000, "output_tpm": 100})
    assert created["plan"] == "ptu"


async def test_redeploying_needs_a_unique_suffix(api: Api) -> None:
    first = await deploy(api)
    status, answer = await api.native("POST", "/deployments", json={"model_name": "qwen3-14b", "capacity": 1})
    assert (status, answer["code"]) == (409, "Conflict")
    assert answer["message"] == "Deployed model qwen3-14b already exists, please specify a suffix."
    second = await deploy(api, suffix="b2")
    assert second["deployed_model"] != first["deployed_model"]
    assert second["deployed_model"].endswith("-b2")
    status, answer = await api.native("POST", "/deployments", json={"model_name": "qwen3-8b", "suffix": "b2"})
    assert (status, answer["code"]) == (409, "Conflict")


async def test_scale_updates_then_runs_with_new_capacity(api: Api) -> None:
    created = await deploy(api, model_name="qwen3-32b", capacity=2)
    name = created["deployed_model"]
    status, answer = await api.native("PUT", f"/deployments/{name}/scale", json={"capacity": 4})
    assert (status, answer["code"]) == (400, "UnsupportedOperation")  # still PENDING
    await api.advance(20)
    status, answer = await api.native("PUT", f"/deployments/{name}/scale", json={"capacity": 5})
    assert (status, answer["code"]) == (400, "InvalidParameter")
    status, answer = await api.native("PUT", f"/deployments/{name}/scale", json={"capacity": 4})
    assert status == 200, answer
    assert (answer["output"]["status"], answer["output"]["capacity"], answer["output"]["ready_capacity"]) == (
        "UPDATING",
        4,
        2,
    )
    await api.advance(20)
    scaled = await get(api, name)
    assert (scaled["status"], scaled["capacity"], scaled["ready_capacity"]) == ("RUNNING", 4, 4)


async def test_update_limits(api: Api) -> None:
    name = (await deploy(api))["deployed_model"]
    status, answer = await api.native("PUT", f"/deployments/{name}/update", json={"rpm_limit": 60, "tpm_limit": 9000})
    assert status == 200, answer
    assert (answer["output"]["rpm_limit"], answer["output"]["tpm_limit"]) == (60, 9000)
    assert (await get(api, name))["rpm_limit"] == 60
    status, answer = await api.native("PUT", f"/deployments/{name}/update", json={"rpm_limit": -1})
    assert (status, answer["code"]) == (400, "InvalidParameter")


async def test_delete_goes_through_deleting_then_disappears(api: Api) -> None:
    name = (await deploy(api))["deployed_model"]
    await api.advance(20)
    status, answer = await api.native("DELETE", f"/deployments/{name}")
    assert status == 200 and answer["output"]["status"] == "DELETING"
    assert (await get(api, name))["status"] == "DELETING"
    await api.advance(10)
    status, answer = await api.native("GET", f"/deployments/{name}")
    assert (status, answer["code"]) == (404, "NotFound")
    state = await api.state()
    assert (state["created"]["deployments"], state["live"]["deployments"]) == (1, 0)
    # Gone for good: the same model can be deployed again without a suffix.
    assert (await deploy(api))["deployed_model"] == name


async def test_list_pages(api: Api) -> None:
    names = [(await deploy(api, suffix=f"s{index}"))["deployed_model"] for index in range(3)]
    _, answer = await api.native("GET", "/deployments", params={"page_no": 1, "page_size": 2})
    output = answer["output"]
    assert (output["page_no"], output["page_size"], output["total"]) == (1, 2, 3)
    assert [item["deployed_model"] for item in output["deployments"]] == names[::-1][:2]
    status, answer = await api.native("GET", "/deployments", params={"page_size": 201})
    assert (status, answer["code"]) == (400, "InvalidParameter")


async def test_scripted_failure(api: Api) -> None:
    await api.control("POST", "/script", {"kind": "deployment", "outcome": "FAILED"})
    name = (await deploy(api))["deployed_model"]
    await api.advance(20)
    failed = await get(api, name)
    assert (failed["status"], failed["ready_capacity"]) == ("FAILED", 0)
