"""Custom model import on the emulator: validation, lifecycle, filters, delete rules, deployability."""

from __future__ import annotations

from typing import Any

import pytest
from core_api import Api

PATH = "/custom_models/import"


def import_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_name": "qwen3-32b",
        "display_name": "my lora",
        "source": "oss",
        "weight_type": "lora",
        "storage_info": {"bucket_name": "models", "object_key": "models/qwen3-32b-lora/"},
    }
    body.update(overrides)
    return body


async def start_import(api: Api, **overrides: Any) -> dict[str, Any]:
    status, answer = await api.native("POST", PATH, json=import_body(**overrides))
    assert status == 200, answer
    output: dict[str, Any] = answer["output"]
    return output


async def get(api: Api, job_id: str) -> dict[str, Any]:
    status, answer = await api.native("GET", f"{PATH}/{job_id}")
    assert status == 200, answer
    output: dict[str, Any] = answer["output"]
    return output


async def test_import_lifecycle_and_result_is_deployable(api: Api) -> None:
    job = await start_import(api)
    assert job["status"] == "PENDING"
    assert job["model_name"].startswith("qwen3-32b-offline-")
    assert (job["source"], job["weight_type"], job["display_name"]) == ("OSS", "lora", "my lora")
    assert job["storage_info"]["object_key"] == "models/qwen3-32b-lora/"
    assert job["gmt_create"].endswith("+00:00")
    await api.advance(5)
    assert (await get(api, job["job_id"]))["status"] == "RUNNING"
    await api.advance(25)
    assert (await get(api, job["job_id"]))["status"] == "SUCCEEDED"
    _, models = await api.native("GET", "/deployments/models", params={"page_size": 200})
    assert job["model_name"] in {item["model_name"] for item in models["output"]["models"]}
    assert (await api.state())["created"]["imports"] == 1


async def test_success_spelling_can_follow_the_chinese_docs(api: Api) -> None:
    job = await start_import(api)
    await api.advance(30)
    await api.control("POST", "/config", {"import_success_status": "SUCCESSED"})
    assert (await get(api, job["job_id"]))["status"] == "SUCCESSED"
    _, listed = await api.native("GET", PATH, params={"status": "SUCCEEDED"})
    assert [item["job_id"] for item in listed["output"]["list"]] == [job["job_id"]]


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"storage_info": {"bucket_name": "models", "object_key": "models/no-slash"}}, 400, "InvalidParameter"),
        ({"storage_info": {"object_key": "models/x/"}}, 400, "InvalidParameter"),
        ({"storage_info": None}, 400, "InvalidParameter"),
        ({"display_name": "x" * 51}, 400, "InvalidParameter"),
        ({"weight_type": "half"}, 400, "InvalidParameter"),
        ({"source": "http"}, 400, "InvalidParameter"),
        ({"model_name": "gpt-9"}, 404, "ModelNotFound"),
    ],
)
async def test_create_rejects_invalid_requests(api: Api, overrides: dict[str, Any], status: int, code: str) -> None:
    got, answer = await api.native("POST", PATH, json=import_body(**overrides))
    assert (got, answer["code"]) == (status, code), answer


async def test_scripted_failure_carries_error_code(api: Api) -> None:
    await api.control("POST", "/script", {"kind": "import", "outcome": "FAILED"})
    job = await start_import(api)
    await api.advance(30)
    failed = await get(api, job["job_id"])
    assert failed["status"] == "FAILED" and failed["error_code"]


async def test_list_filters_and_delete_rules(api: Api) -> None:
    first = await start_import(api)
    await api.advance(30)
    second = await start_import(api, model_name="qwen3-8b")
    _, listed = await api.native("GET", PATH, params={"page_no": 1, "page_size": 10})
    output = listed["output"]
    assert output["total"] == 2 and [item["job_id"] for item in output["list"]] == [second["job_id"], first["job_id"]]
    _, listed = await api.native("GET", PATH, params={"status": "PENDING"})
    assert [item["job_id"] for item in listed["output"]["list"]] == [second["job_id"]]
    _, listed = await api.native("GET", PATH, params={"model_name": "qwen3-32b"})
    assert [item["job_id"] for item in listed["output"]["list"]] == [first["job_id"]]
    status, answer = await api.native("GET", PATH, params={"page_size": 101})
    assert (status, answer["code"]) == (400, "InvalidParameter")

    status, answer = await api.native("DELETE", f"{PATH}/{second['job_id']}")
    assert (status, answer["code"]) == (400, "OperationDenied")
    status, _ = await api.native("DELETE", f"{PATH}/{first['job_id']}")
    assert status == 200
    status, answer = await api.native("GET", f"{PATH}/{first['job_id']}")
    assert (status, answer["code"]) == (404, "NotFound")
