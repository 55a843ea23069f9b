"""The emulator's cross-cutting behaviour: auth, the control API, fault injection, scripts, reset, clock."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from core_api import Api, frozen_emulator

KINDS = {"fine_tunes", "deployments", "imports", "files", "compat_files", "batches", "responses", "oss_objects"}


async def add_faults(api: Api, *rules: dict[str, Any]) -> None:
    await api.control("POST", "/faults", {"rules": list(rules)})


# -- auth ------------------------------------------------------------------------------------------------


async def test_missing_key_is_rejected_in_each_api_family(api: Api) -> None:
    status, body = await api.native("GET", "/fine-tunes", auth=False)
    assert (status, body["code"]) == (401, "InvalidApiKey")
    assert set(body) == {"request_id", "code", "message"}
    status, body = await api.call("GET", "/compatible-mode/v1/responses/resp_x", auth=False)
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key" and body["request_id"]
    async with api.session.get(f"{api.url}/api/v1/fine-tunes", headers={"Authorization": "Basic abc"}) as response:
        assert response.status == 401
    async with api.session.get(f"{api.url}/api/v1/fine-tunes", headers={"Authorization": "Bearer "}) as response:
        assert response.status == 401


async def test_control_api_needs_no_key(api: Api) -> None:
    state = await api.state()
    assert set(state) == {"created", "live"}
    assert set(state["created"]) >= KINDS and set(state["live"]) >= KINDS


async def test_configured_key_is_the_only_one_accepted(tmp_path: Any) -> None:
    with frozen_emulator(tmp_path, "--api-key", "sk-the-right-one") as emulator:
        async with aiohttp.ClientSession() as session:
            for key, expected in (("sk-wrong", 401), ("sk-the-right-one", 200)):
                headers = {"Authorization": f"Bearer {key}"}
                async with session.get(f"{emulator.url}/api/v1/fine-tunes", headers=headers) as response:
                    body = await response.text()
                    assert response.status == expected, body
                    assert "sk-wrong" not in body  # the presented key is never echoed


# -- faults ----------------------------------------------------------------------------------------------


async def test_status_fault_answers_in_the_api_familys_shape_with_retry_after(api: Api) -> None:
    await add_faults(
        api,
        {"method": "POST", "path": "/api/v1/fine-tunes", "status": 429, "code": "Throttling", "retry_after": 1.5},
        {"path": "/compatible-mode/v1/*", "status": 503, "code": "ServiceUnavailable", "message": "busy"},
    )
    async with api.session.post(
        f"{api.url}/api/v1/fine-tunes", json={}, headers={"Authorization": f"Bearer {api.api_key}"}
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"  # rounded up, never early
        assert response.headers["retry-after-ms"] == "1500"
        body = await response.json()
    assert body["code"] == "Throttling" and body["request_id"]
    # Method mismatch: GET passes through.
    status, _ = await api.native("GET", "/fine-tunes")
    assert status == 200
    status, body = await api.call("GET", "/compatible-mode/v1/responses/resp_1")
    assert status == 503
    assert body["error"]["code"] == "ServiceUnavailable" and body["error"]["message"] == "busy"
    rules = (await api.control("GET", "/faults"))["rules"]
    assert [rule["hits"] for rule in rules] == [1, 1]


async def test_times_limits_how_often_a_rule_fires_and_delete_clears(api: Api) -> None:
    await add_faults(api, {"path": "/api/v1/fine-tunes", "status": 500, "code": "InternalError", "times": 2})
    statuses = [(await api.native("GET", "/fine-tunes"))[0] for _ in range(3)]
    assert statuses == [500, 500, 200]
    await add_faults(api, {"path": "/api/v1/*", "status": 500})
    assert (await api.native("GET", "/fine-tunes"))[0] == 500
    assert (await api.control("DELETE", "/faults"))["rules"] == []
    assert (await api.native("GET", "/fine-tunes"))[0] == 200


async def test_probability_zero_never_fires_and_latency_delays(api: Api) -> None:
    await add_faults(
        api,
        {"path": "/api/v1/fine-tunes", "status": 500, "probability": 0.0},
        {"path": "/api/v1/fine-tunes", "latency": 0.3},
    )
    started = time.monotonic()
    status, _ = await api.native("GET", "/fine-tunes")
    assert status == 200
    assert time.monotonic() - started >= 0.3
    rules = (await api.control("GET", "/faults"))["rules"]
    assert [rule["hits"] for rule in rules] == [0, 1]


async def test_drop_before_closes_the_connection_without_processing(api: Api) -> None:
    file_id = await api.upload_file()
    await add_faults(api, {"method": "POST", "path": "/api/v1/fine-tunes", "drop": "before", "times": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.native("POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id]})
    assert (await api.state())["created"]["fine_tunes"] == 0


async def test_drop_after_processes_the_request_then_closes(api: Api) -> None:
    file_id = await api.upload_file()
    await add_faults(api, {"method": "POST", "path": "/api/v1/fine-tunes", "drop": "after", "times": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.native("POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id]})
    state = await api.state()
    assert state["created"]["fine_tunes"] == 1 and state["live"]["fine_tunes"] == 1
    _, listed = await api.native("GET", "/fine-tunes")
    assert listed["output"]["total"] == 1


async def test_fault_on_an_oss_path_answers_in_xml(api: Api) -> None:
    await add_faults(api, {"path": "/bucket/*", "status": 503, "code": "ServiceUnavailable"})
    async with api.session.get(f"{api.url}/bucket/some/key") as response:
        assert response.status == 503
        assert "<Code>ServiceUnavailable</Code>" in await response.text()


async def test_invalid_fault_rules_are_rejected(api: Api) -> None:
    async with api.session.post(f"{api.url}/_emulator/faults", json={"rules": [{"drop": "sideways"}]}) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "InvalidParameter"
    async with api.session.post(f"{api.url}/_emulator/faults", data=b"{not json") as response:
        assert response.status == 400
        assert (await response.json())["code"] == "InvalidParameter"
    assert (await api.control("GET", "/faults"))["rules"] == []


# -- scripts, clock, reset -------------------------------------------------------------------------------


async def test_scripts_are_listed_and_consumed_in_order(api: Api) -> None:
    await api.control("POST", "/script", {"kind": "fine_tune", "outcome": "FAILED", "count": 2})
    assert (await api.control("GET", "/script"))["scripts"] == {"fine_tune": ["FAILED", "FAILED"]}
    jobs = [await api.create_fine_tune() for _ in range(3)]
    assert (await api.control("GET", "/script"))["scripts"] == {}
    await api.advance(80)
    statuses = [(await api.native("GET", f"/fine-tunes/{job['job_id']}"))[1]["output"]["status"] for job in jobs]
    assert statuses == ["FAILED", "FAILED", "SUCCEEDED"]
    async with api.session.post(f"{api.url}/_emulator/script", json={"kind": "spaceship"}) as response:
        assert response.status == 400


async def test_clock_moves_only_forward(api: Api) -> None:
    before = await api.control("GET", "/clock")
    after = await api.control("POST", "/clock", {"advance": 100})
    assert after["elapsed"] - before["elapsed"] >= 100
    assert after["now"] - before["now"] >= 100
    async with api.session.post(f"{api.url}/_emulator/clock", json={"advance": -1}) as response:
        assert response.status == 400


async def test_reset_clears_resources_counters_faults_and_scripts(api: Api) -> None:
    await api.create_fine_tune()
    await api.control("POST", "/script", {"kind": "deployment", "outcome": "FAILED"})
    await add_faults(api, {"path": "/nothing", "status": 500})
    assert (await api.state())["created"]["fine_tunes"] == 1
    await api.control("POST", "/reset")
    state = await api.state()
    assert all(count == 0 for count in state["created"].values())
    assert all(count == 0 for count in state["live"].values())
    assert (await api.control("GET", "/faults"))["rules"] == []
    assert (await api.control("GET", "/script"))["scripts"] == {}
    _, listed = await api.native("GET", "/fine-tunes")
    assert listed["output"]["total"] == 0


async def test_every_answer_carries_a_request_id_header(api: Api) -> None:
    async with api.session.get(f"{api.url}/api/v1/fine-tunes") as response:
        assert response.status == 401 and response.headers["X-Request-Id"]


async def test_unknown_api_routes_answer_in_the_families_error_shape(api: Api) -> None:
    status, body = await api.native("GET", "/no-such-resource")
    assert (status, body["code"]) == (404, "NotFound") and body["request_id"]
    status, body = await api.call("GET", "/compatible-mode/v1/no-such-resource")
    assert status == 404 and body["error"]["code"] == "NotFound"
    status, body = await api.native("PATCH", "/fine-tunes")
    assert (status, body["code"]) == (405, "UnsupportedOperation")


# -- list lag ----------------------------------------------------------------------------------------------------


async def test_list_lag_hides_young_resources_from_lists_but_not_from_gets(api: Api) -> None:
    config = await api.control("POST", "/config", {"list_lag_seconds": 600})
    assert config["list_lag_seconds"] == 600
    file_id = await api.upload_file()
    status, body = await api.native("POST", "/fine-tunes", json={"model": "qwen3-14b", "training_file_ids": [file_id]})
    assert status == 200, body
    job_id = body["output"]["job_id"]

    # Created, readable by id, yet not listed: as Bailian's lists lag its creates.
    assert (await api.native("GET", f"/fine-tunes/{job_id}"))[0] == 200
    assert (await api.native("GET", "/fine-tunes"))[1]["output"]["jobs"] == []
    assert (await api.native("GET", "/files"))[1]["data"]["files"] == []

    await api.advance(600)
    assert [job["job_id"] for job in (await api.native("GET", "/fine-tunes"))[1]["output"]["jobs"]] == [job_id]
    assert [item["file_id"] for item in (await api.native("GET", "/files"))[1]["data"]["files"]] == [file_id]

    await api.control("POST", "/reset")
    # A reset restores the profile the emulator started with (default, unless the suite runs strict).
    config = await api.control("POST", "/config", {})
    assert config["list_lag_seconds"] == (30 if config["profile"] == "strict" else 0)


@pytest.mark.parametrize("lag", [-1, "soon", True, 10**6])
async def test_list_lag_must_be_a_sane_number_of_seconds(api: Api, lag: object) -> None:
    async with api.session.post(f"{api.url}/_emulator/config", json={"list_lag_seconds": lag}) as response:
        assert response.status == 400
