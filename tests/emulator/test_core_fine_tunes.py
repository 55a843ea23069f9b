"""Fine-tunes on the emulator: create forms, validation, lifecycle, quota, logs, checkpoints, events."""

from __future__ import annotations

import asyncio
import re

import pytest
from core_api import Api

QUOTA_MESSAGE = "Only 20 fine-tune job in running or succeeded allowed per user."


async def status_of(api: Api, job_id: str) -> str:
    status, body = await api.native("GET", f"/fine-tunes/{job_id}")
    assert status == 200, body
    return str(body["output"]["status"])


async def test_create_returns_pending_job_with_documented_fields(api: Api) -> None:
    file_id = await api.upload_file()
    status, body = await api.native(
        "POST",
        "/fine-tunes",
        json={"model": "qwen3-14b", "training_file_ids": [file_id], "hyper_parameters": {"n_epochs": 2}},
    )
    assert status == 200, body
    assert body["request_id"]
    job = body["output"]
    assert re.fullmatch(r"ft-\d{12}-[0-9a-f]{4}", job["job_id"])
    assert job["status"] == "PENDING"
    assert job["model"] == job["base_model"] == "qwen3-14b"
    assert job["training_file_ids"] == [file_id]
    assert job["validation_file_ids"] == []
    # Only what was sent is echoed (调优任务对象: "显性声明过的超参表"); no finetuned_output before SUCCEEDED.
    assert job["hyper_parameters"] == {"n_epochs": 2}
    assert "finetuned_output" not in job
    assert job["training_type"] == "sft"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", job["create_time"])
    assert "end_time" not in job and "usage" not in job
    assert (await api.state())["created"]["fine_tunes"] == 1


async def test_training_datasets_form_is_accepted(api: Api) -> None:
    train, valid = await api.upload_file(), await api.upload_file(name="valid.jsonl")
    job = await api.create_fine_tune(
        training_datasets=[{"data_source_type": "file_id", "file_id": train}],
        validation_datasets=[{"data_source_type": "file_id", "file_id": valid}],
        training_type="efficient_sft",
        job_name="run-1",
    )
    assert job["training_file_ids"] == [train]
    assert job["validation_file_ids"] == [valid]
    assert job["job_name"] == "run-1"
    assert job["training_type"] == "efficient_sft"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "qwen3-14b"}, 400, "InvalidParameter"),
        ({"model": "qwen3-14b", "training_file_ids": []}, 400, "InvalidParameter"),
        ({"model": "qwen3-14b", "training_file_ids": ["no-such-file"]}, 400, "InvalidParameter"),
        ({"model": "qwen-9000", "training_file_ids": ["x"]}, 404, "ModelNotFound"),
        ({"training_file_ids": ["x"]}, 400, "InvalidParameter"),
    ],
)
async def test_create_rejects_invalid_requests(api: Api, body: dict[str, object], status: int, code: str) -> None:
    got, answer = await api.native("POST", "/fine-tunes", json=body)
    assert (got, answer["code"]) == (status, code), answer
    assert set(answer) == {"request_id", "code", "message"}
    if "model" in body and not body.get("training_file_ids"):
        assert answer["message"] == "Missing training files"
    assert (await api.state())["created"]["fine_tunes"] == 0


async def test_unknown_training_type_and_bad_hyper_parameters_are_rejected(api: Api) -> None:
    file_id = await api.upload_file()
    for extra in (
        {"training_type": "rlhf"},
        {"hyper_parameters": {"n_epochs": 0}},
        {"hyper_parameters": {"learning_rate": "fast"}},
    ):
        status, answer = await api.native(
            "POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id], **extra}
        )
        assert (status, answer["code"]) == (400, "InvalidParameter"), extra


async def test_lifecycle_advances_with_the_clock_and_reports_usage(api: Api) -> None:
    job = await api.create_fine_tune()
    job_id = job["job_id"]
    seen = [await status_of(api, job_id)]
    for _ in range(3):
        await api.advance(5)
        seen.append(await status_of(api, job_id))
    assert seen == ["PENDING", "QUEUING", "RUNNING", "RUNNING"]
    _, body = await api.native("GET", f"/fine-tunes/{job_id}")
    assert "usage" not in body["output"] and "end_time" not in body["output"]
    await api.advance(55)
    _, body = await api.native("GET", f"/fine-tunes/{job_id}")
    output = body["output"]
    assert output["status"] == "SUCCEEDED"
    assert output["usage"] > 0
    assert output["end_time"] >= output["create_time"]
    assert output["finetuned_output"].startswith("qwen3-14b-")


async def test_cancel_goes_through_canceling_to_canceled_and_blocks_recancel(api: Api) -> None:
    job = await api.create_fine_tune()
    status, body = await api.native("POST", f"/fine-tunes/{job['job_id']}/cancel")
    assert status == 200 and body["output"] == {"status": "success"}
    assert await status_of(api, job["job_id"]) == "CANCELING"
    await api.advance(5)
    _, body = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    assert body["output"]["status"] == "CANCELED"
    assert body["output"]["usage"] == 0  # canceled before training consumed anything
    assert "end_time" in body["output"]
    status, body = await api.native("POST", f"/fine-tunes/{job['job_id']}/cancel")
    assert (status, body["code"]) == (400, "UnsupportedOperation")


async def test_delete_only_terminal_jobs(api: Api) -> None:
    job = await api.create_fine_tune()
    status, body = await api.native("DELETE", f"/fine-tunes/{job['job_id']}")
    assert (status, body["code"]) == (400, "UnsupportedOperation")
    await api.advance(80)
    status, body = await api.native("DELETE", f"/fine-tunes/{job['job_id']}")
    assert status == 200 and body["output"] == {"status": "success"}
    status, body = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    assert (status, body["code"]) == (404, "NotFound")
    state = await api.state()
    assert state["created"]["fine_tunes"] == 1 and state["live"]["fine_tunes"] == 0


async def test_scripted_failure(api: Api) -> None:
    await api.control("POST", "/script", {"kind": "fine_tune", "outcome": "FAILED", "count": 1})
    failing = await api.create_fine_tune()
    healthy = await api.create_fine_tune()
    await api.advance(80)
    assert await status_of(api, failing["job_id"]) == "FAILED"
    assert await status_of(api, healthy["job_id"]) == "SUCCEEDED"
    _, body = await api.native("GET", f"/fine-tunes/{failing['job_id']}")
    assert "usage" not in body["output"] and "end_time" in body["output"]


async def test_quota_counts_running_and_succeeded_jobs(api: Api) -> None:
    file_id = await api.upload_file()
    jobs = [await api.create_fine_tune(training_file_ids=[file_id]) for _ in range(20)]
    status, body = await api.native("POST", "/fine-tunes", json={"model": "qwen3-8b", "training_file_ids": [file_id]})
    assert (status, body["code"], body["message"]) == (429, "Throttling", QUOTA_MESSAGE)
    # Succeeded jobs still count; only deleting (or failed/canceled jobs) frees the quota.
    await api.advance(80)
    status, _ = await api.native("POST", "/fine-tunes", json={"model": "qwen3-8b", "training_file_ids": [file_id]})
    assert status == 429
    assert (await api.native("DELETE", f"/fine-tunes/{jobs[0]['job_id']}"))[0] == 200
    status, body = await api.native("POST", "/fine-tunes", json={"model": "qwen3-8b", "training_file_ids": [file_id]})
    assert status == 200, body


async def test_list_pages_newest_first_and_filters_by_model(api: Api) -> None:
    file_id = await api.upload_file()
    created = [
        await api.create_fine_tune(model=model, training_file_ids=[file_id])
        for model in ("qwen3-14b", "qwen3-8b", "qwen3-14b")
    ]
    status, body = await api.native("GET", "/fine-tunes", params={"page_no": 1, "page_size": 2})
    assert status == 200
    output = body["output"]
    assert (output["page_no"], output["page_size"], output["total"]) == (1, 2, 3)
    assert [job["job_id"] for job in output["jobs"]] == [created[2]["job_id"], created[1]["job_id"]]
    _, body = await api.native("GET", "/fine-tunes", params={"page_no": 2, "page_size": 2})
    assert [job["job_id"] for job in body["output"]["jobs"]] == [created[0]["job_id"]]
    _, body = await api.native("GET", "/fine-tunes", params={"model": "qwen3-8b"})
    assert [job["job_id"] for job in body["output"]["jobs"]] == [created[1]["job_id"]]
    status, body = await api.native("GET", "/fine-tunes", params={"page_size": 101})
    assert (status, body["code"]) == (400, "InvalidParameter")


async def test_logs_grow_with_time_and_page_by_offset(api: Api) -> None:
    job = await api.create_fine_tune(hyper_parameters={"n_epochs": 1})
    _, early = await api.native("GET", f"/fine-tunes/{job['job_id']}/logs")
    await api.advance(80)
    _, late = await api.native("GET", f"/fine-tunes/{job['job_id']}/logs", params={"offset": 0, "line": 1000})
    assert early["output"]["total"] < late["output"]["total"] == len(late["output"]["logs"])
    lines = late["output"]["logs"]
    assert lines[-1].endswith("##FT_COMPLETE##")
    assert any("Actual number of consumed tokens is" in line for line in lines)
    _, window = await api.native("GET", f"/fine-tunes/{job['job_id']}/logs", params={"offset": 2, "line": 3})
    assert window["output"]["logs"] == lines[2:5]
    assert window["output"]["total"] == len(lines)


async def test_checkpoints_newest_first_and_export(api: Api) -> None:
    job = await api.create_fine_tune(hyper_parameters={"n_epochs": 2})
    job_id = job["job_id"]
    _, body = await api.native("GET", f"/fine-tunes/{job_id}/checkpoints")
    assert body["output"] == []
    status, body = await api.native("GET", f"/fine-tunes/{job_id}/export/checkpoint-10", params={"model_name": "m"})
    assert (status, body["code"]) == (400, "UnsupportedOperation")
    await api.advance(80)
    _, body = await api.native("GET", f"/fine-tunes/{job_id}/checkpoints")
    checkpoints = body["output"]
    assert [item["step"] for item in checkpoints] == [20, 10]
    assert all(item["status"] == "SUCCEEDED" and item["model_name"] for item in checkpoints)
    assert checkpoints[0]["full_name"] == f"{job_id}:checkpoint-20"
    status, body = await api.native(
        "GET", f"/fine-tunes/{job_id}/export/checkpoint-10", params={"model_name": "my-export"}
    )
    assert status == 200 and body["output"] is True
    _, models = await api.native("GET", "/deployments/models", params={"page_size": 200})
    names = {model["model_name"] for model in models["output"]["models"]}
    _, answer = await api.native("GET", f"/fine-tunes/{job_id}")
    assert {"my-export", answer["output"]["finetuned_output"]} <= names
    status, body = await api.native("GET", f"/fine-tunes/{job_id}/export/checkpoint-99", params={"model_name": "x"})
    assert (status, body["code"]) == (404, "NotFound")


async def test_event_stream_sends_log_lines_until_the_job_ends(api: Api) -> None:
    job = await api.create_fine_tune(hyper_parameters={"n_epochs": 1})
    await api.advance(40)
    headers = {"Authorization": f"Bearer {api.api_key}"}
    data: list[str] = []
    url = f"{api.url}/api/v1/fine-tunes/{job['job_id']}/stream"
    async with api.session.get(url, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data:"):
                data.append(line[len("data:") :])
                if "'step': 3," in line:
                    # The job is mid-training: the stream stays open until emulated time moves on.
                    await asyncio.sleep(0.3)
                    await api.advance(60)
    assert any(line.endswith("Saving checkpoint-10") for line in data)  # written after the advance
    assert data[-1].endswith("##FT_COMPLETE##")
    _, logs = await api.native("GET", f"/fine-tunes/{job['job_id']}/logs", params={"line": 1000})
    assert data == logs["output"]["logs"]


async def test_unknown_job_is_404_native_shape(api: Api) -> None:
    for method, suffix in (
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/cancel"),
        ("GET", "/logs"),
        ("GET", "/checkpoints"),
    ):
        status, body = await api.native(method, f"/fine-tunes/ft-000000000000-0000{suffix}")
        assert (status, body["code"]) == (404, "NotFound"), (method, suffix)
        assert body["request_id"] and body["message"]


async def test_quotas_are_configurable_and_a_reset_restores_them(api: Api) -> None:
    answer = await api.control("POST", "/config", {"quotas": {"fine_tune_jobs": 2, "files": 3}})
    assert answer["quotas"]["fine_tune_jobs"] == 2 and answer["quotas"]["files"] == 3
    assert answer["import_success_status"] == "SUCCEEDED"
    file_id = await api.upload_file()
    for _ in range(2):
        await api.create_fine_tune(training_file_ids=[file_id])
    status, body = await api.native("POST", "/fine-tunes", json={"model": "qwen3-8b", "training_file_ids": [file_id]})
    assert (status, body["message"]) == (429, "Only 2 fine-tune job in running or succeeded allowed per user.")
    # Native files: the count is a quota (the answer itself is tested in test_documented_behaviour.py).
    for _ in range(2):
        await api.upload_file()
    with pytest.raises(IndexError):
        await api.upload_file()
    assert (await api.state())["live"]["files"] == 3
    await api.control("POST", "/reset")
    assert (await api.control("GET", "/config"))["quotas"] == {
        "fine_tune_jobs": 20,
        "files": 100,
        "file_bytes": 5 << 30,
        "batches": 2,
    }


async def test_config_refuses_unknown_settings(api: Api) -> None:
    for body in ({"quota": {}}, {"quotas": {"jobs": 1}}, {"quotas": {"files": -1}}):
        status, answer = await api.call("POST", "/_emulator/config", json=body)
        assert status == 400 and answer["code"] == "InvalidParameter", answer
