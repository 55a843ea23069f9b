"""`bailian-flow validate` on what is not a text dataset: a Wan or packed VL zip (each problem naming the entry),
a VL JSONL (the freeze_vit billing warning) and a deployment marker (the field), with the rates the seed prices."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from cli_support import cli_command, isolated_env

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def _validate(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        cli_command("validate", *args, "--json"),
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_wan_sample_zip_is_valid_and_priced_by_rate(tmp_path: Path) -> None:
    code, report = _validate(tmp_path, str(SAMPLES / "wan" / "wan-i2v-training-dataset.zip"), "--model", "wan2.6-i2v")

    assert code == 0 and report["ok"] and report["records"] == 10, report
    assert report["training_rate"]["output_per_1k_tokens"] == 0.004 and report["cost"] is None


def test_a_zip_missing_a_named_video_names_that_entry(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    with (
        zipfile.ZipFile(SAMPLES / "wan" / "wan-i2v-training-dataset.zip") as source,
        zipfile.ZipFile(broken, "w") as target,
    ):
        for item in source.infolist():
            if item.filename != "video_2.mp4":
                target.writestr(item, source.read(item.filename))

    code, report = _validate(tmp_path, str(broken), "--model", "wan2.6-i2v")

    assert code == 1 and not report["ok"]
    assert any("video_2.mp4" in json.dumps(error) for error in report["errors"]), report["errors"]


def test_a_vl_dataset_warns_when_freeze_vit_is_false(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES / "vl", tmp_path / "vl")
    args = ("--model", "qwen3-vl-8b-instruct", "--freeze-vit", "false")

    zipped = _validate(tmp_path, str(tmp_path / "vl" / "train.zip"), *args)[1]
    listed = _validate(tmp_path, str(tmp_path / "vl" / "train.jsonl"), *args)[1]
    kept = _validate(tmp_path, str(tmp_path / "vl" / "train.jsonl"), "--model", "qwen3-vl-8b-instruct")[1]

    assert zipped["ok"] and listed["ok"] and kept["ok"]
    assert any("freeze_vit" in warning for warning in zipped["warnings"])
    assert any("freeze_vit" in warning for warning in listed["warnings"])
    assert not any("freeze_vit" in warning for warning in kept["warnings"])


def test_a_deploy_marker_is_checked_and_a_bad_one_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.deploy.yaml"
    bad.write_text("deploy: {model: qwen3-8b, plan: mu}\n")

    good_code, good = _validate(tmp_path, str(SAMPLES / "deploy" / "qwen-flash.deploy.yaml"))
    bad_code, wrong = _validate(tmp_path, str(bad))

    assert good_code == 0 and good["plan"] == "ptu" and good["deployment_rate"]["input_per_1k_tokens"] == 0.002
    assert bad_code == 1 and wrong["errors"][0]["field"] == "deploy.deploy_spec"
