"""The switches of `/_emulator/config` for what Bailian leaves undocumented, and the profiles that set them
(emulator/behaviour.py). One test per switch, over HTTP, plus the profiles and how a process starts in one."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from core_api import Api, frozen_emulator

from bailian_flow.local.emulator_process import EmulatorProcess

JOB_SECONDS = 80
STRICT = {
    "job_name_kept": False,
    "delete_requires_stopped": True,
    "list_lag_seconds": 30.0,
    "deployments_page_size_cap": 100,
    "ptu_suffix_refused": True,
    "serial_training": True,
    "serial_training_refuses_create": True,
    "native_descriptions_listed": False,
    "batch_answers_in_order": False,
    "deployment_name_echoed": False,
}
DEFAULT = {
    "job_name_kept": True,
    "delete_requires_stopped": False,
    "list_lag_seconds": 0.0,
    "deployments_page_size_cap": None,
    "ptu_suffix_refused": False,
    "serial_training": False,
    "serial_training_refuses_create": False,
    "native_descriptions_listed": True,
    "batch_answers_in_order": True,
    "deployment_name_echoed": True,
}


def _switches(config: dict[str, Any]) -> dict[str, Any]:
    return {name: config[name] for name in STRICT}


async def test_profiles_set_every_switch_and_switches_named_beside_them_win(api: Api) -> None:
    config = await api.control("GET", "/config")
    assert (config["profile"], _switches(config)) == ("default", DEFAULT)
    config = await api.control("POST", "/config", {"profile": "strict"})
    assert (config["profile"], _switches(config)) == ("strict", STRICT)
    # A profile first, then the switches named beside it.
    config = await api.control("POST", "/config", {"profile": "default", "serial_training": True})
    assert config["profile"] == "custom" and config["serial_training"] and not config["ptu_suffix_refused"]


async def test_bad_settings_change_nothing(api: Api) -> None:
    for body in (
        {"profile": "lenient"},
        {"job_name_kept": "no"},
        {"deployments_page_size_cap": 0},
        {"list_lag_seconds": -1},
        {"region": "us"},
        {"profile": "strict", "list_lag_seconds": "x"},
    ):
        status, answer = await api.call("POST", "/_emulator/config", json=body)
        assert (status, answer["code"]) == (400, "InvalidParameter"), body
    assert (await api.control("GET", "/config"))["profile"] == "default"


def _config(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_emulator/config", timeout=10) as response:
        config: dict[str, Any] = json.loads(response.read())
        return config


def test_a_reset_restores_the_profile_and_region_the_process_started_with(tmp_path: Path) -> None:
    with frozen_emulator(tmp_path / "strict", "--profile", "strict", "--region", "intl") as emulator:
        emulator.configure({"profile": "default", "region": "cn"})
        emulator.reset()
        config = _config(emulator.url)
    assert (config["profile"], config["region"], _switches(config)) == ("strict", "intl", STRICT)
    with frozen_emulator(tmp_path / "default", "--profile", "default") as emulator:
        emulator.configure({"profile": "strict"})
        emulator.reset()
        config = _config(emulator.url)
    assert (config["profile"], config["region"], _switches(config)) == ("default", "cn", DEFAULT)


def test_the_environment_names_the_profile_of_every_emulator_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAILIAN_FLOW_EMULATOR_PROFILE", "strict")
    with frozen_emulator(tmp_path) as emulator:
        assert _config(emulator.url)["profile"] == "strict"


async def test_the_local_stack_starts_the_emulator_in_a_profile() -> None:
    process = EmulatorProcess(profile="strict")
    url = await process.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/config") as response:
            assert (await response.json())["profile"] == "strict"
    finally:
        await process.stop()


async def test_job_name_not_kept_answers_the_job_id(api: Api) -> None:
    kept = await api.create_fine_tune(job_name="bf-run-1-g1")
    assert kept["job_name"] == "bf-run-1-g1"
    await api.control("POST", "/config", {"job_name_kept": False})
    job = await api.create_fine_tune(job_name="bf-run-1-g2")
    assert job["job_name"] == job["job_id"]
    _, body = await api.native("GET", f"/fine-tunes/{job['job_id']}")
    assert body["output"]["job_name"] == job["job_id"]


async def _deployment(api: Api, **extra: Any) -> dict[str, Any]:
    status, body = await api.native("POST", "/deployments", json={"model_name": "qwen3-8b", "capacity": 1, **extra})
    assert status == 200, body
    output: dict[str, Any] = body["output"]
    return output


async def test_delete_requires_stopped_refuses_a_running_deployment(api: Api) -> None:
    await api.control("POST", "/config", {"delete_requires_stopped": True})
    running = await _deployment(api, suffix="run")
    await api.control("POST", "/script", {"kind": "deployment", "outcome": "STOPPED"})
    stopped = await _deployment(api, suffix="stop")
    await api.control("POST", "/script", {"kind": "deployment", "outcome": "FAILED"})
    failed = await _deployment(api, suffix="fail")
    await api.advance(30)
    status, body = await api.native("DELETE", f"/deployments/{running['deployed_model']}")
    assert (status, body["code"]) == (400, "OperationDenied")
    for item in (stopped, failed):
        status, body = await api.native("DELETE", f"/deployments/{item['deployed_model']}")
        assert (status, body["output"]["status"]) == (200, "DELETING")
    # No stop operation is documented: the control API stands for a stop in the console.
    stopped_now = await api.control("POST", f"/deployments/{running['deployed_model']}/stop")
    assert stopped_now["output"]["status"] == "STOPPED"
    status, body = await api.native("DELETE", f"/deployments/{running['deployed_model']}")
    assert (status, body["output"]["status"]) == (200, "DELETING")
    await api.control("POST", "/config", {"delete_requires_stopped": False})
    another = await _deployment(api, suffix="run2")
    await api.advance(30)
    status, body = await api.native("DELETE", f"/deployments/{another['deployed_model']}")
    assert (status, body["output"]["status"]) == (200, "DELETING")


async def test_list_lag_hides_fresh_resources_from_lists_only(api: Api) -> None:
    await api.control("POST", "/config", {"profile": "strict"})
    file_id = await api.upload_file()
    _, listed = await api.native("GET", "/files")
    assert listed["data"]["files"] == []
    status, _ = await api.native("GET", f"/files/{file_id}")
    assert status == 200
    await api.advance(30)
    _, listed = await api.native("GET", "/files")
    assert [item["file_id"] for item in listed["data"]["files"]] == [file_id]


async def test_deployments_page_size_cap_answers_at_most_the_cap(api: Api) -> None:
    for index in range(5):
        await _deployment(api, suffix=f"d{index}")
    _, body = await api.native("GET", "/deployments", params={"page_size": 4})
    assert (body["output"]["page_size"], len(body["output"]["deployments"])) == (4, 4)
    await api.control("POST", "/config", {"deployments_page_size_cap": 3})
    _, body = await api.native("GET", "/deployments", params={"page_size": 4, "page_no": 2})
    assert (body["output"]["page_size"], body["output"]["total"]) == (3, 5)
    assert len(body["output"]["deployments"]) == 2


async def test_ptu_suffix_refused(api: Api) -> None:
    body = {"model_name": "qwen-plus", "plan": "ptu", "ptu_capacity": {"input_tpm": 1, "output_tpm": 1}}
    await api.control("POST", "/config", {"ptu_suffix_refused": True})
    status, answer = await api.native("POST", "/deployments", json={**body, "suffix": "mine"})
    assert (status, answer["code"]) == (400, "InvalidParameter")
    status, answer = await api.native("POST", "/deployments", json=body)
    assert status == 200, answer


async def _status(api: Api, job_id: str) -> str:
    _, body = await api.native("GET", f"/fine-tunes/{job_id}")
    return str(body["output"]["status"])


async def test_serial_training_queues_a_job_until_the_one_before_ends(api: Api) -> None:
    await api.control("POST", "/config", {"serial_training": True})
    first, second, third = [await api.create_fine_tune() for _ in range(3)]
    await api.advance(20)
    assert [await _status(api, job["job_id"]) for job in (first, second, third)] == ["RUNNING", "QUEUING", "QUEUING"]
    await api.advance(60)  # the first ends at 70 s
    assert [await _status(api, job["job_id"]) for job in (first, second, third)] == ["SUCCEEDED", "RUNNING", "QUEUING"]
    # Canceling the running job lets the next one train once the cancel lands (3 s).
    await api.native("POST", f"/fine-tunes/{second['job_id']}/cancel")
    await api.advance(4)
    assert [await _status(api, job["job_id"]) for job in (second, third)] == ["CANCELED", "RUNNING"]


async def test_serial_training_refuses_a_create_while_a_job_is_unfinished(api: Api) -> None:
    await api.control("POST", "/config", {"serial_training_refuses_create": True})
    file_id = await api.upload_file()
    await api.create_fine_tune(training_file_ids=[file_id])
    body = {"model": "qwen3-14b", "training_file_ids": [file_id]}
    status, answer = await api.native("POST", "/fine-tunes", json=body)
    assert (status, answer["code"], answer["message"]) == (
        429,
        "Throttling",
        "Too many fine-tune job in running, please retry later.",
    )
    await api.advance(JOB_SECONDS)
    status, answer = await api.native("POST", "/fine-tunes", json=body)
    assert status == 200, answer


async def test_native_descriptions_not_listed(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("files", b"{}\n", filename="a.jsonl")
    form.add_field("descriptions", "kept by get")
    headers = {"Authorization": f"Bearer {api.api_key}"}
    async with api.session.post(f"{api.url}/api/v1/files", data=form, headers=headers) as response:
        file_id = (await response.json())["data"]["uploaded_files"][0]["file_id"]
    _, listed = await api.native("GET", "/files")
    assert listed["data"]["files"][0]["description"] == "kept by get"
    await api.control("POST", "/config", {"native_descriptions_listed": False})
    _, listed = await api.native("GET", "/files")
    assert "description" not in listed["data"]["files"][0]
    _, got = await api.native("GET", f"/files/{file_id}")
    assert got["data"]["description"] == "kept by get"
