"""Issue #14: the pipeline holds on what Bailian documents, whichever way the undocumented behaviours go.

One test (or a few) per numbered point of the issue that is the pipeline's, each against the emulator with the
switch that matters (docs/service-contract.md names the rows): a fine-tune found by its files when the service
keeps no name (1, C2/C3), a run on the user's own file that leaves older jobs of that file alone (C3), a file found
by its name when the list echoes no description (7, C18), the default epochs in the estimate (5, C7), one training
at a time as a wait (6, C8), PTU refused when the run opens (4, C21/C22), the region refused when it opens (9,
C13/C27/C30/C45). The file quota's burst (2) is in test_admission.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from emulator_support import Emulator
from harness import SFT_SAMPLE, Pipeline, http_json

KEY = "datasets/documented/train.jsonl"


def _config(pipeline: Pipeline, **settings: Any) -> None:
    http_json(f"{pipeline.url}/_emulator/config", "POST", settings)


def _jobs(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.bailian("GET", "/api/v1/fine-tunes?page_size=100")["output"]["jobs"])


def _user_file(pipeline: Pipeline) -> str:
    from bailian_flow.client import BailianClient

    async def upload() -> str:
        async with BailianClient(api_key="sk-test-pipeline", base_url=pipeline.url) as client:
            return (await client.files.upload(SFT_SAMPLE, filename="mine.jsonl")).file_id

    return asyncio.run(upload())


# -- 1. a lost fine-tune is found by the files it trains on, not by its name -----------------------------------------


def test_a_lost_create_is_found_by_its_training_file_when_the_service_keeps_no_name(pipeline: Pipeline) -> None:
    _config(pipeline, job_name_kept=False)
    pipeline.short_leases()
    # Processed, then the answer is lost: the look-up must recognise the job by its training file.
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", drop="after", times=1)
    pipeline.put(KEY, SFT_SAMPLE)

    pipeline.pump(raising_ok=True)

    run = pipeline.run_for_key(KEY)
    assert run["stage"] == "DONE", run
    assert pipeline.created()["fine_tunes"] == 1, "a second job trained (and billed) for one dataset"
    [job] = _jobs(pipeline)
    assert job["job_name"] == job["job_id"], "the service kept no name of ours"
    assert job["training_file_ids"] == [run["file_id"]] and run["job_id"] == job["job_id"]


def test_a_cancel_without_job_names_stops_the_run_s_job(pipeline: Pipeline) -> None:
    _config(pipeline, job_name_kept=False)
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    pipeline.deliver_new()
    run = pipeline.run(run_id)["run"]
    assert run["stage"] == "training"
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 31})  # listed, past any lag

    status, body = pipeline.api("POST", f"/runs/{run_id}/cancel")

    assert status == 200 and body["run"]["stage"] == "CANCELED", body
    assert pipeline.fine_tune(run["job_id"])["status"] in ("CANCELING", "CANCELED")
    assert "canceled fine-tune" in pipeline.history(run_id)[-1]["changed"]


def test_a_run_on_the_user_s_file_leaves_older_jobs_of_that_file_alone(pipeline: Pipeline) -> None:
    # Someone trained on the same file before: same file, same model, no name of ours. Not the run's job.
    _config(pipeline, job_name_kept=False)
    file_id = _user_file(pipeline)
    other = pipeline.bailian("POST", "/api/v1/fine-tunes", {"model": "qwen3-8b", "training_file_ids": [file_id]})
    other_id = other["output"]["job_id"]
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 600})  # it ended and is listed
    pipeline.short_leases()
    pipeline.fault(method="POST", path="/api/v1/fine-tunes", drop="after", times=1)

    status, body = pipeline.api("POST", "/runs", {"file_id": file_id, "settings": {"on_success": {"action": "none"}}})
    assert status == 202, body
    run_id = body["run"]["run_id"]
    run = pipeline.pump(run_id, raising_ok=True)

    assert run["stage"] == "DONE", run
    assert run["job_id"] != other_id, "the older job of the user's file was adopted as the run's"
    assert pipeline.created()["fine_tunes"] == 2
    assert pipeline.fine_tune(other_id)["status"] == "SUCCEEDED", "the older job was left as it was"


def test_retention_finds_the_run_of_an_older_job_without_its_name(pipeline: Pipeline) -> None:
    _config(pipeline, job_name_kept=False)
    sidecar = b"job_retention: keep-last-1\non_success: {action: none}\n"
    runs = []
    for name, data in (("older", SFT_SAMPLE), ("newer", SFT_SAMPLE + b"\n")):
        key = f"datasets/retention/{name}.jsonl"
        pipeline.put(key + ".flow.yaml", sidecar)
        run_id = pipeline.upload(key, data)
        assert pipeline.pump(run_id, timeout=60)["stage"] == "DONE"
        http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 31})  # listed, past any lag
        runs.append(pipeline.run(run_id)["run"])

    older, newer = runs
    assert [job["job_id"] for job in _jobs(pipeline)] == [newer["job_id"]], "keep-last-1 keeps only the newest job"
    assert any("deleted by job retention" in entry["changed"] for entry in pipeline.history(older["run_id"]))
    # The note that named the job's run goes with the job; the kept job's stays.
    assert pipeline.object_count(f"jobs/{older['job_id']}/") == 0
    assert pipeline.object_count(f"jobs/{newer['job_id']}/") == 1


# -- 7. a lost upload is found by its name when the list echoes no description --------------------------------------


def test_a_lost_upload_is_found_by_its_name_when_descriptions_are_not_listed(pipeline: Pipeline) -> None:
    _config(pipeline, native_descriptions_listed=False)
    pipeline.short_leases()
    pipeline.fault(method="POST", path="/api/v1/files", drop="after", times=1)
    pipeline.put(KEY, SFT_SAMPLE)

    pipeline.pump(raising_ok=True)

    run = pipeline.run_for_key(KEY)
    assert run["stage"] == "DONE", run
    assert pipeline.created()["files"] == 1, "the dataset was uploaded twice (a second file against the quota)"


# -- 5. the documented default epochs -------------------------------------------------------------------------------


def test_the_estimate_of_a_run_without_n_epochs_counts_the_documented_one_epoch(pipeline: Pipeline) -> None:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    pipeline.deliver_new()
    estimate = pipeline.run(run_id)["run"]["estimate"]
    assert estimate is not None and estimate["epochs"] == 1, estimate


# -- 6. one training at a time is a wait --------------------------------------------------------------------------


def test_a_create_refused_while_another_job_trains_waits_and_both_runs_finish(pipeline: Pipeline) -> None:
    _config(pipeline, serial_training=True, serial_training_refuses_create=True)
    first = pipeline.upload("datasets/serial/first.jsonl", SFT_SAMPLE)
    pipeline.deliver_new()
    second = pipeline.upload("datasets/serial/second.jsonl", SFT_SAMPLE + b"\n")
    pipeline.deliver_new()

    waiting = pipeline.run(second)["run"]
    assert waiting["stage"] == "waiting", waiting
    assert waiting["waiting"]["quota"] == "training-slot" and waiting["error"] is None
    assert "Too many fine-tune job in running" in pipeline.history(second)[-1]["changed"]

    assert pipeline.pump(first, timeout=60)["stage"] == "DONE"
    assert pipeline.pump(second, timeout=60)["stage"] == "DONE"
    stages = [entry["stage"] for entry in pipeline.history(second)]
    assert "failed" not in stages
    assert pipeline.created()["fine_tunes"] == 2


# -- 4. PTU serves base models only: refused when the run opens ---------------------------------------------------


def test_a_fine_tune_with_plan_ptu_fails_when_it_opens_naming_the_setting(pipeline: Pipeline) -> None:
    sidecar = b"on_success: {plan: ptu, ptu_capacity: {input_tpm: 1000, output_tpm: 1000}}\n"
    pipeline.put(KEY + ".flow.yaml", sidecar)
    run_id = pipeline.upload(KEY, SFT_SAMPLE)

    run = pipeline.run(run_id)["run"]
    assert run["stage"] == "FAILED", run
    assert run["error"]["field"] == "on_success.plan" and "ptu" in run["error"]["reason"]
    assert run["error"]["object"] == KEY + ".flow.yaml", "the sidecar that asked for it"
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (0, 0, 0)


def test_a_rest_body_asking_ptu_for_a_trained_or_imported_model_is_a_400(pipeline: Pipeline) -> None:
    ptu = {"plan": "ptu", "ptu_capacity": {"input_tpm": 1000, "output_tpm": 1000}}
    pipeline.put(KEY, SFT_SAMPLE)
    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": {"on_success": ptu}})
    assert status == 400 and "on_success.plan" in body["error"]["message"], body

    weights = {"object_key": "weights/lora/", "model_name": "qwen3-8b"}
    status, body = pipeline.api("POST", "/runs", {"import": weights, "settings": {"on_success": ptu}})
    assert status == 400 and "ptu" in body["error"]["message"], body
    assert pipeline.runs() == []


# -- 9. regions: an operation the configured region does not offer ------------------------------------------------


@pytest.fixture
def singapore(emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    http_json(f"{emulator_reset.url}/_emulator/config", "POST", {"region": "intl"})
    return Pipeline(emulator_reset.url, monkeypatch, DASHSCOPE_REGION="intl")


def test_a_fine_tune_in_singapore_fails_when_it_opens_naming_the_region(singapore: Pipeline) -> None:
    run_id = singapore.upload(KEY, SFT_SAMPLE)

    run = singapore.run(run_id)["run"]
    assert run["stage"] == "FAILED", run
    assert run["error"]["field"] == "region" and "Beijing" in run["error"]["reason"], run["error"]
    assert singapore.created()["files"] == 0, "nothing is uploaded (or paid) for a run that cannot train"

    status, body = singapore.api("POST", "/runs", {"file_id": "file-anything"})
    assert status in (400, 404), body


def test_an_import_in_singapore_deploys_only_on_a_plan_offered_there(singapore: Pipeline) -> None:
    weights = {"object_key": "weights/lora/", "model_name": "qwen3-8b"}
    status, body = singapore.api("POST", "/runs", {"import": weights})
    assert status == 400 and "region" in body["error"]["message"], body

    status, body = singapore.api(
        "POST", "/runs", {"import": weights, "settings": {"on_success": {"deploy_after_import": False}}}
    )
    assert status == 202, body
    assert body["run"]["stage"] == "job-succeeded"


# -- 8. a batch's answers in any order --------------------------------------------------------------------------------

BATCH_KEY = "batches/documented/questions.jsonl"


def _batch_line(number: int) -> bytes:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {number}"}]}
    line = {"custom_id": f"req-{number}", "method": "POST", "url": "/v1/chat/completions", "body": body}
    import json

    return json.dumps(line).encode() + b"\n"


def _answered(pipeline: Pipeline, run_id: str, name: str) -> list[str]:
    import json

    data = pipeline.get(f"results/documented/questions/{run_id}/{name}")
    assert data is not None, name
    return [json.loads(line)["custom_id"] for line in data.splitlines()]


@pytest.mark.parametrize("failed", [False, True])
def test_a_batch_s_answers_in_any_order_come_back_in_input_order(pipeline: Pipeline, failed: bool) -> None:
    # C48: the order of a result file is undocumented; the strict reading shuffles it. A run of one shard writes its
    # results straight from its collect (`Shard.direct`), sorted all the same, its failed lines too.
    _config(pipeline, batch_answers_in_order=False)
    if failed:
        pipeline.script("batch", "PARTIAL:0.3")
    run_id = pipeline.upload(BATCH_KEY, b"".join(_batch_line(n) for n in range(1, 61)))

    run = pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    (shard,) = run["batch"]["shards"]
    assert shard["direct"] is True
    output, errors = _answered(pipeline, run_id, "output.jsonl"), _answered(pipeline, run_id, "errors.jsonl")
    numbers = [int(custom_id.removeprefix("req-")) for custom_id in output]
    assert numbers == sorted(numbers)
    failed_numbers = [int(custom_id.removeprefix("req-")) for custom_id in errors]
    assert failed_numbers == sorted(failed_numbers)
    assert sorted(numbers + failed_numbers) == list(range(1, 61))
    assert bool(errors) is failed
    assert pipeline.object_count(f"results/documented/questions/{run_id}/_parts/") == 0


# -- C49: a deployment echoes no name; a PTU one carries no suffix of ours either ------------------------------------

PTU_MARKER = "deployments/documented/flash.deploy.yaml"
PTU_BODY = b"deploy: {model: qwen-flash-2025-07-28, plan: ptu, ptu_capacity: {input_tpm: 10000, output_tpm: 1000}}\n"
PTU_CREATE = {
    "model_name": "qwen-flash-2025-07-28",
    "plan": "ptu",
    "ptu_capacity": {"input_tpm": 10000, "output_tpm": 1000},
}


def _live_deployments(pipeline: Pipeline) -> list[str]:
    listed = pipeline.bailian("GET", "/api/v1/deployments?page_size=100")["output"]["deployments"]
    return sorted(item["deployed_model"] for item in listed if item["status"] != "DELETING")


def _ptu_run_beside_a_stranger(pipeline: Pipeline, drop: str) -> tuple[str, dict[str, Any]]:
    """A PTU marker's run where no name is echoed and its first create is dropped `drop` Bailian processed it, with
    someone's PTU deployment of the same model there (and listed, past any lag) before the run: the stranger's
    deployed model, and the run once it settled. One made within the lists' lag before the run's first look could
    not be told from the run's."""
    _config(pipeline, deployment_name_echoed=False)
    pipeline.short_leases()
    stranger = pipeline.bailian("POST", "/api/v1/deployments", PTU_CREATE)["output"]["deployed_model"]
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 31})
    pipeline.fault(method="POST", path="/api/v1/deployments", drop=drop, times=1)
    pipeline.put(PTU_MARKER, PTU_BODY)
    pipeline.pump(raising_ok=True)
    return str(stranger), pipeline.run_for_key(PTU_MARKER)


def test_a_ptu_create_whose_answer_is_lost_is_never_repeated_nor_guessed_when_no_name_is_echoed(
    pipeline: Pipeline,
) -> None:
    # Processed, then the answer is lost: what appeared since may be the run's or anybody's; the stranger, there
    # before the run, is never taken for the run's.
    stranger, run = _ptu_run_beside_a_stranger(pipeline, "after")

    assert run["stage"] == "FAILED" and run["error"]["code"] == "DeployOutcomeUnknown", run
    made = [name for name in _live_deployments(pipeline) if name != stranger]
    assert len(made) == 1, "a second PTU deployment (billed by the hour) for one marker"
    assert made[0] in run["error"]["reason"] and stranger not in run["error"]["reason"], run["error"]
    assert _live_deployments(pipeline) == sorted([stranger, made[0]]), "nothing not provably the run's is deleted"
    assert pipeline.created()["deployments"] == 2


def test_a_ptu_create_refused_before_it_was_processed_is_made_once_when_no_name_is_echoed(
    pipeline: Pipeline,
) -> None:
    stranger, run = _ptu_run_beside_a_stranger(pipeline, "before")

    assert run["stage"] == "DONE", run
    assert _live_deployments(pipeline) == sorted([stranger, run["deployed_model"]])
    assert "name" not in pipeline.bailian("GET", f"/api/v1/deployments/{run['deployed_model']}")["output"]
