"""The emulator's default behaviour follows the official pages (issue 14): file quota answers, training defaults and
echoes, the seed's models and their rules, PTU, regions and batch listing. One test per behaviour, over HTTP."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import dashscope
import pytest
from core_api import Api
from emulator_support import Emulator

# Jobs end after PENDING 5 s + QUEUING 5 s + RUNNING 60 s (emulated).
JOB_SECONDS = 80


async def _upload_form(api: Api, *files: tuple[str, bytes]) -> dict[str, Any]:
    form = aiohttp.FormData()
    for name, content in files:
        form.add_field("files", content, filename=name, content_type="application/octet-stream")
    form.add_field("purpose", "fine-tune")
    headers = {"Authorization": f"Bearer {api.api_key}"}
    async with api.session.post(f"{api.url}/api/v1/files", data=form, headers=headers) as response:
        assert response.status == 200
        body: dict[str, Any] = (await response.json())["data"]
        return body


async def test_file_count_quota_full_is_a_200_with_the_file_under_failed_uploads(api: Api) -> None:
    await api.control("POST", "/config", {"quotas": {"files": 2}})
    data = await _upload_form(api, ("a.jsonl", b"{}\n"), ("b.jsonl", b"{}\n"), ("c.jsonl", b"{}\n"))
    assert [item["name"] for item in data["uploaded_files"]] == ["a.jsonl", "b.jsonl"]
    assert data["failed_uploads"] == [
        {"name": "c.jsonl", "code": "BadRequest.TooMany", "message": "Out of number, 2 of 2 files has been uploaded."}
    ]
    assert (await api.state())["live"]["files"] == 2


async def test_file_space_quota_full_is_too_large_naming_the_space_used(api: Api) -> None:
    await api.control("POST", "/config", {"quotas": {"file_bytes": 10}})
    first = await _upload_form(api, ("a.jsonl", b"12345678"))
    assert len(first["uploaded_files"]) == 1
    second = await _upload_form(api, ("b.jsonl", b"12345678"), ("c.jsonl", b"12"))
    # The file that does not fit fails; a smaller one after it still fits.
    assert second["failed_uploads"] == [
        {
            "name": "b.jsonl",
            "code": "BadRequest.TooLarge",
            "message": "Out of space, 8 B of 10 B storage space has been used.",
        }
    ]
    assert [item["name"] for item in second["uploaded_files"]] == ["c.jsonl"]


def test_dashscope_sdk_reads_the_quota_full_answer(
    emulator_reset: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator_reset.configure({"quotas": {"files": 0}})
    path = tmp_path / "train.jsonl"
    path.write_text('{"messages": []}\n')
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{emulator_reset.url}/api/v1")
    answer = dashscope.Files.upload(file_path=str(path), purpose="fine-tune", api_key=emulator_reset.api_key)
    assert answer.status_code == HTTPStatus.OK
    assert answer.output["uploaded_files"] == []
    assert answer.output["failed_uploads"][0]["code"] == "BadRequest.TooMany"


async def test_training_uses_the_documented_defaults_and_echoes_only_what_was_sent(api: Api) -> None:
    job = await api.create_fine_tune()
    assert job["hyper_parameters"] == {}
    await api.advance(JOB_SECONDS)
    _, body = await api.native("GET", f"/fine-tunes/{job['job_id']}/checkpoints")
    # One epoch by default (10 emulated steps an epoch): a single checkpoint.
    assert [item["step"] for item in body["output"]] == [10]
    _, logs = await api.native("GET", f"/fine-tunes/{job['job_id']}/logs", params={"line": 1000})
    started = next(line for line in logs["output"]["logs"] if "Training started" in line)
    assert "'max_length': 2048" in started and "'lr_scheduler_type': 'cosine'" in started and "'split': 0.8" in started


async def test_learning_rate_sent_as_a_string_comes_back_as_a_number(api: Api) -> None:
    job = await api.create_fine_tune(hyper_parameters={"learning_rate": "1.6e-5", "batch_size": 8})
    assert job["hyper_parameters"] == {"learning_rate": 1.6e-5, "batch_size": 8}


async def test_finetuned_output_usage_and_end_time_appear_only_when_documented(api: Api) -> None:
    file_id = await api.upload_file()
    job = await api.create_fine_tune(training_file_ids=[file_id])
    assert job["training_file_ids"] == [file_id]
    assert not {"finetuned_output", "usage", "end_time"} & job.keys()
    await api.advance(30)
    _, running = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    assert running["output"]["status"] == "RUNNING"
    assert not {"finetuned_output", "usage", "end_time"} & running["output"].keys()
    await api.advance(JOB_SECONDS)
    _, done = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    assert done["output"]["status"] == "SUCCEEDED"
    assert {"finetuned_output", "usage", "end_time"} <= done["output"].keys()
    canceled = await api.create_fine_tune(training_file_ids=[file_id])
    await api.native("POST", f"/fine-tunes/{canceled['job_id']}/cancel")
    await api.advance(10)
    _, body = await api.native("GET", f"/fine-tunes/{canceled['job_id']}")
    assert body["output"]["status"] == "CANCELED"
    assert {"usage", "end_time"} <= body["output"].keys() and "finetuned_output" not in body["output"]


async def test_failed_jobs_have_an_end_time_and_no_usage(api: Api) -> None:
    await api.control("POST", "/script", {"kind": "fine_tune", "outcome": "FAILED"})
    job = await api.create_fine_tune()
    await api.advance(JOB_SECONDS)
    _, body = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    assert body["output"]["status"] == "FAILED"
    assert "end_time" in body["output"] and not {"usage", "finetuned_output"} & body["output"].keys()


async def test_freeze_vit_is_a_hyper_parameter_of_the_vision_language_models_only(api: Api) -> None:
    for model in ("qwen3-vl-8b-instruct", "qwen3-vl-8b-thinking"):
        job = await api.create_fine_tune(model=model, hyper_parameters={"freeze_vit": True})
        assert job["hyper_parameters"] == {"freeze_vit": True}
    file_id = await api.upload_file()
    body = {"model": "qwen3-14b", "training_file_ids": [file_id], "hyper_parameters": {"freeze_vit": True}}
    status, answer = await api.native("POST", "/fine-tunes", json=body)
    assert (status, answer["code"]) == (400, "InvalidParameter")


WAN_MODELS = ("wan2.7-i2v", "wan2.6-i2v", "wan2.5-i2v-preview", "wan2.2-i2v-flash", "wan2.2-kf2v-flash")


@pytest.mark.parametrize("model", WAN_MODELS)
async def test_wan_fine_tunes_take_efficient_sft_required_hyper_parameters_and_a_zip(api: Api, model: str) -> None:
    archive = await api.upload_file(b"PK\x03\x04 not really", name="wan-i2v-training-dataset.zip")
    jsonl = await api.upload_file()
    good = {
        "model": model,
        "training_file_ids": [archive],
        "training_type": "efficient_sft",
        "hyper_parameters": {"batch_size": 2, "n_epochs": 10, "learning_rate": 2e-5},
    }
    refused = [
        {**good, "training_type": "sft"},
        {**good, "training_type": None},
        {**good, "hyper_parameters": {"n_epochs": 10}},
        {**good, "hyper_parameters": {"batch_size": 2}},
        {**good, "training_file_ids": [jsonl]},
    ]
    for body in refused:
        status, answer = await api.native("POST", "/fine-tunes", json=body)
        assert (status, answer["code"]) == (400, "InvalidParameter"), body
    status, answer = await api.native("POST", "/fine-tunes", json=good)
    assert status == 200, answer


async def test_wan_lora_outputs_deploy_with_plan_lora_only(api: Api) -> None:
    archive = await api.upload_file(b"PK", name="data.zip")
    hyper_parameters = {"batch_size": 2, "n_epochs": 1}
    job = await api.create_fine_tune(
        model="wan2.5-i2v-preview",
        training_file_ids=[archive],
        training_type="efficient_sft",
        hyper_parameters=hyper_parameters,
    )
    await api.advance(JOB_SECONDS)
    _, body = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    model = body["output"]["finetuned_output"]
    status, answer = await api.native("POST", "/deployments", json={"model_name": model, "capacity": 1})
    assert (status, answer["code"]) == (400, "InvalidParameter")
    aigc_config = {"use_input_prompt": False, "prompt": "money rain", "lora_prompt_default": "money rain"}
    deploy = {"model_name": model, "capacity": 1, "plan": "lora", "aigc_config": aigc_config}
    status, answer = await api.native("POST", "/deployments", json=deploy)
    assert status == 200, answer
    assert answer["output"]["aigc_config"] == aigc_config


PTU = {"plan": "ptu", "ptu_capacity": {"input_tpm": 10000, "output_tpm": 1000}}


@pytest.mark.parametrize("model", ["qwen-plus", "qwen-flash-2025-07-28", "qwen3-8b"])
async def test_qwen_base_models_deploy_on_ptu_named_by_the_backend(api: Api, model: str) -> None:
    first = await api.native("POST", "/deployments", json={"model_name": model, **PTU})
    second = await api.native("POST", "/deployments", json={"model_name": model, **PTU, "suffix": "mine"})
    assert first[0] == second[0] == 200, (first, second)
    names = [first[1]["output"]["deployed_model"], second[1]["output"]["deployed_model"]]
    # Two PTU deployments of one model coexist; a suffix sent is not part of the name.
    assert len(set(names)) == 2 and not any(name.endswith("mine") for name in names)
    status, answer = await api.native("POST", "/deployments", json={"model_name": model, "plan": "mu"})
    assert (status, answer["code"]) == (400, "InvalidParameter")  # MU needs deploy_spec
    status, answer = await api.native(
        "POST", "/deployments", json={"model_name": model, "plan": "mu", "deploy_spec": "MU1", "suffix": "mu1"}
    )
    assert status == 200, answer


@pytest.mark.parametrize("model", ["emo", "animate-anyone-detect"])
async def test_image_and_video_base_models_deploy_by_capacity_not_ptu(api: Api, model: str) -> None:
    status, answer = await api.native("POST", "/deployments", json={"model_name": model, **PTU})
    assert (status, answer["code"]) == (400, "InvalidParameter")
    status, answer = await api.native("POST", "/deployments", json={"model_name": model, "capacity": 1})
    assert status == 200, answer
    status, answer = await api.native("POST", "/fine-tunes", json={"model": model, "training_file_ids": ["x"]})
    assert status in (400, 404) and answer["code"] in ("InvalidParameter", "ModelNotFound")


async def test_ptu_is_refused_for_a_fine_tuned_model(api: Api) -> None:
    job = await api.create_fine_tune()
    await api.advance(JOB_SECONDS)
    _, body = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    model = body["output"]["finetuned_output"]
    status, answer = await api.native("POST", "/deployments", json={"model_name": model, **PTU})
    assert (status, answer["code"]) == (400, "InvalidParameter")
    assert "base models" in answer["message"]


async def test_training_is_refused_outside_beijing_and_a_reset_restores_the_region(api: Api) -> None:
    file_id = await api.upload_file()
    answer = await api.control("POST", "/config", {"region": "intl"})
    assert answer["region"] == "intl"
    status, body = await api.native("POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id]})
    assert (status, body["code"]) == (404, "NotFound")
    assert "Beijing" in body["message"]
    # Import: the English page says Singapore, the Chinese one Beijing; offered in both.
    storage = {"bucket_name": "weights", "object_key": "models/x/"}
    status, body = await api.native(
        "POST",
        "/custom_models/import",
        json={"model_name": "qwen3-32b", "source": "oss", "weight_type": "lora", "storage_info": storage},
    )
    assert status == 200, body
    await api.control("POST", "/reset")
    assert (await api.control("GET", "/config"))["region"] == "cn"
    await api.create_fine_tune()


async def _batch(api: Api) -> str:
    line = {"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "qwen-plus"}}
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("purpose", "batch")
    form.add_field("file", json.dumps(line).encode() + b"\n", filename="in.jsonl")
    headers = {"Authorization": f"Bearer {api.api_key}"}
    async with api.session.post(f"{api.url}/compatible-mode/v1/files", data=form, headers=headers) as response:
        file_id = (await response.json())["id"]
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, batch = await api.call("POST", "/compatible-mode/v1/batches", json=body)
    assert status == 200, batch
    return str(batch["id"])


async def test_batch_list_status_takes_a_comma_list_and_shows_thirty_days(api: Api) -> None:
    old = await _batch(api)
    await api.native("GET", "/files")  # any call; the batch advances when read
    await api.advance(40)
    recent = await _batch(api)
    _, listed = await api.call("GET", "/compatible-mode/v1/batches", params={"status": "completed,validating"})
    assert [item["id"] for item in listed["data"]] == [recent, old]
    _, listed = await api.call("GET", "/compatible-mode/v1/batches", params={"status": "completed"})
    assert [item["id"] for item in listed["data"]] == [old]
    status, _ = await api.call("GET", "/compatible-mode/v1/batches", params={"status": "completed,bogus"})
    assert status == 400
    await api.advance(30 * 24 * 3600 - 20)
    _, listed = await api.call("GET", "/compatible-mode/v1/batches")
    assert [item["id"] for item in listed["data"]] == [recent]
    _, body = await api.call("GET", f"/compatible-mode/v1/batches/{old}")
    assert body["id"] == old  # older than 30 days: not listed, still found by id
