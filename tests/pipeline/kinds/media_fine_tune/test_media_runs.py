"""Media fine-tunes: a dataset zip (Wan image-to-video, or Qwen-VL images packed with their index) is checked by
ranged reads from OSS, uploaded, trained and deployed; a bad zip is a FAILED run naming the entry, with nothing
uploaded."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from harness import ROOT, Pipeline

WAN_ZIP = (Path(ROOT) / "samples" / "wan" / "wan-i2v-training-dataset.zip").read_bytes()
VL_ZIP = (Path(ROOT) / "samples" / "vl" / "train.zip").read_bytes()
KEY = "datasets/video/effect.zip"
WAN_SETTINGS = b"model: wan2.6-i2v\nhyper_parameters: {batch_size: 2, n_epochs: 1}\n"


def _zip_helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zip_helpers", Path(ROOT) / "tests" / "validate" / "zip_helpers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("zip_helpers", module)  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def _start(pipeline: Pipeline, data: bytes = WAN_ZIP, settings: bytes = WAN_SETTINGS, times: int = 1) -> str:
    pipeline.put(KEY + ".flow.yaml", settings)
    pipeline.put(KEY, data)
    pipeline.deliver_new(times=times)
    return str(pipeline.run_for_key(KEY)["run_id"])


def _files(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.bailian("GET", "/api/v1/files?page_size=100")["data"]["files"])


def test_a_wan_zip_is_checked_uploaded_trained_and_deployed_as_a_lora(pipeline: Pipeline) -> None:
    run_id = _start(pipeline)

    run = pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    assert run["kind"] == "media-fine-tune" and run["records"] == 10
    job = pipeline.fine_tune(run["job_id"])
    assert job["model"] == "wan2.6-i2v" and job["training_type"] == "efficient_sft"
    assert job["hyper_parameters"]["batch_size"] == 2 and job["hyper_parameters"]["n_epochs"] == 1
    deployment = pipeline.bailian("GET", f"/api/v1/deployments/{run['deployed_model']}")["output"]
    assert deployment["plan"] == "lora" and deployment["model_name"] == run["finetuned_output"]
    assert run["estimate"]["training_rate"]["input_per_1k_tokens"] == 0.002
    assert run["estimate"]["deployment_rate"]["currency"] == "CNY"
    assert pipeline.created()["files"] == 1


def test_a_packed_vl_zip_trains_a_qwen_vl_model_and_warns_about_freeze_vit(pipeline: Pipeline) -> None:
    settings = b"model: qwen3-vl-8b-instruct\nhyper_parameters: {freeze_vit: false}\non_success: {action: none}\n"
    run_id = _start(pipeline, VL_ZIP, settings)

    run = pipeline.pump(run_id, timeout=60)

    assert run["stage"] == "DONE", run
    assert run["records"] == 6 and pipeline.fine_tune(run["job_id"])["model"] == "qwen3-vl-8b-instruct"
    assert any("freeze_vit" in warning for warning in run["warnings"])


def test_every_event_delivered_five_times_makes_one_file_one_job_one_deployment(pipeline: Pipeline) -> None:
    run_id = _start(pipeline, times=5)

    run = pipeline.pump(run_id, duplicates=5, timeout=60)

    assert run["stage"] == "DONE", run
    created = pipeline.created()
    assert (created["files"], created["fine_tunes"], created["deployments"]) == (1, 1, 1)


def _hostile(name: str) -> tuple[bytes, str]:
    """A damaged archive and what its run's error must name."""
    helpers = _zip_helpers()
    entries = helpers.wan_entries()
    if name == "missing-video":
        return helpers.build_zip([entry for entry in entries if entry.name != "video_3.mp4"]), "video_3.mp4"
    if name == "wrong-media-type":
        swapped = [
            helpers.Entry("image_2.png", b"GIF89a" + b"\0" * 64) if entry.name == "image_2.png" else entry
            for entry in entries
        ]
        return helpers.build_zip(swapped), "image_2.png"
    if name == "outside-the-root":
        return helpers.build_zip([*entries, helpers.Entry("../escape.png", helpers.png())]), "../escape.png"
    if name == "no-index":
        return helpers.build_zip([entry for entry in entries if entry.name != "data.jsonl"]), "data.jsonl"
    if name == "bomb-by-ratio":
        bomb = helpers.Entry("image_1.png", b"\0" * (8 << 20))
        return helpers.build_zip([bomb if entry.name == "image_1.png" else entry for entry in entries]), "image_1.png"
    if name == "bomb-by-count":
        filler = [helpers.Entry(f"pad_{n}.txt", b"") for n in range(10_001)]
        return helpers.build_zip([*entries, *filler]), "zip bomb by count"
    if name == "truncated":
        return helpers.build_zip(entries)[:-200], "truncated: no end of central directory"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "damage",
    [
        "missing-video",
        "wrong-media-type",
        "outside-the-root",
        "no-index",
        "bomb-by-ratio",
        "bomb-by-count",
        "truncated",
    ],
)
def test_a_hostile_zip_is_a_failed_run_naming_the_problem_with_nothing_uploaded(
    pipeline: Pipeline, damage: str
) -> None:
    data, named = _hostile(damage)
    run_id = _start(pipeline, data)

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert run["error"]["code"] == "InvalidDataset"
    assert named in json.dumps(run["error"]), run["error"]
    assert pipeline.created()["files"] == 0 and _files(pipeline) == []


def test_a_missing_hyper_parameter_fails_the_run_naming_it_before_anything_is_read(pipeline: Pipeline) -> None:
    run_id = _start(pipeline, settings=b"model: wan2.2-i2v-flash\nhyper_parameters: {batch_size: 2}\n")

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED" and run["error"]["field"] == "hyper_parameters.n_epochs", run
    assert pipeline.created()["files"] == 0


def test_a_zip_for_a_text_model_fails_naming_the_model(pipeline: Pipeline) -> None:
    run_id = _start(pipeline, settings=b"model: qwen3-8b\n")

    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED" and run["error"]["field"] == "model", run


def test_cancel_while_training_cancels_the_job_and_deletes_the_file(pipeline: Pipeline) -> None:
    run_id = _start(pipeline)
    for _ in range(3):
        for record in pipeline.new_records():
            pipeline.deliver(record)
    assert pipeline.run(run_id)["run"]["stage"] == "training"

    status, _ = pipeline.api("POST", f"/runs/{run_id}/cancel")
    run = pipeline.pump(run_id)

    assert status == 200 and run["stage"] == "CANCELED", run
    assert pipeline.fine_tune(run["job_id"])["status"] in ("CANCELED", "CANCELING")
    assert _files(pipeline) == []


def test_a_failed_job_is_retried_and_reaches_done(pipeline: Pipeline) -> None:
    pipeline.script("fine_tune")
    run_id = _start(pipeline)
    assert pipeline.pump(run_id, timeout=60)["stage"] == "FAILED"

    status, body = pipeline.api("POST", f"/runs/{run_id}/retry")
    run = pipeline.pump(run_id, timeout=60)

    assert status == 202 and body["run"]["stage"] == "requested"
    assert run["stage"] == "DONE" and run["attempt"] == 2, run


def test_post_runs_with_a_zip_key_opens_a_media_run(pipeline: Pipeline) -> None:
    pipeline.put(KEY + ".flow.yaml", WAN_SETTINGS)
    pipeline.put(KEY, WAN_ZIP)
    pipeline.new_records()  # the upload's own event is lost: the REST request starts it

    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY})

    assert status == 202 and body["run"]["kind"] == "media-fine-tune", body
    assert pipeline.pump(body["run"]["run_id"], timeout=60)["stage"] == "DONE"


def test_the_sample_zips_are_the_documented_form() -> None:
    # Guard: the samples this suite trains on hold an index and the media it names.
    for data in (WAN_ZIP, VL_ZIP):
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert "data.jsonl" in names and len(names) > 1
