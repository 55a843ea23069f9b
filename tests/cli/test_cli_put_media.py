"""`bailian-flow put` of what issue #16 adds, on the local stack, as a user runs it: the Wan sample zip, the VL
sample (a JSONL naming local images, packed into a zip) and the deployment marker each reach DONE."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import DevStack, isolated_env, start_dev

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(isolated_env(tmp_path_factory.mktemp("home")))
    try:
        yield stack
    finally:
        assert stack.stop() == 0


def _done(dev: DevStack, run_id: str, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    with dev.hurried():
        while True:
            run = dev.cli_json("runs", "show", run_id)["run"]
            if run["stage"] in ("DONE", "FAILED", "CANCELED") or time.monotonic() > deadline:
                return dict(run)
            time.sleep(0.3)


def test_put_of_the_wan_sample_zip_reaches_done(dev: DevStack) -> None:
    zipped = str(SAMPLES / "wan" / "wan-i2v-training-dataset.zip")
    sets = (
        "--set",
        "model=wan2.6-i2v",
        "--set",
        "hyper_parameters.batch_size=2",
        "--set",
        "hyper_parameters.n_epochs=1",
    )
    put = dev.cli("put", zipped, *sets)

    assert put.returncode == 0, put.stderr
    run = _done(dev, put.stdout.strip())
    assert run["stage"] == "DONE" and run["kind"] == "media-fine-tune", run
    assert run["source"]["key"] == "datasets/wan/wan-i2v-training-dataset.zip"  # type: ignore[index]


def test_put_of_the_vl_sample_packs_its_local_images_and_reaches_done(dev: DevStack, tmp_path: Path) -> None:
    shutil.copytree(SAMPLES / "vl", tmp_path / "vl")
    put = dev.cli("put", str(tmp_path / "vl" / "train.jsonl"), "--set", "model=qwen3-vl-8b-instruct")

    assert put.returncode == 0, put.stderr
    assert "6 local image(s)" in put.stderr and "no 48-hour URL deadline" in put.stderr
    run = _done(dev, put.stdout.strip())
    assert run["stage"] == "DONE" and run["records"] == 6, run
    assert run["source"]["key"] == "datasets/vl/train.zip"  # type: ignore[index]


def test_put_of_the_deploy_marker_deploys_and_reaches_done(dev: DevStack) -> None:
    put = dev.cli("put", str(SAMPLES / "deploy" / "qwen-flash.deploy.yaml"))

    assert put.returncode == 0, put.stderr
    run = _done(dev, put.stdout.strip())
    assert run["stage"] == "DONE" and run["kind"] == "deploy", run
    assert run["source"]["key"] == "deployments/qwen-flash.deploy.yaml"  # type: ignore[index]
    assert run["deployment_status"] == "RUNNING" and run["deployed_model"]
    # No dataset, so no records, tokens nor training cost: the plan's rate is what it costs.
    shown = dev.cli("runs", "show", str(run["run_id"]))
    assert shown.returncode == 0, shown.stderr
    assert "rate      0.002 / 0.002 CNY per 1K input / output tokens (PTU plan deployment" in shown.stdout
    assert "records" not in shown.stdout and "estimate and actual" not in shown.stdout, shown.stdout
    assert dev.cli_json("runs", "show", str(run["run_id"]))["facts"]["costs"] is None
