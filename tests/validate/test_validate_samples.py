"""The datasets shipped in samples/ pass the validator; the golden invalid files fail exactly as recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bailian_flow.validate import (
    DatasetError,
    DatasetKind,
    check_file_name,
    kind_for_training_type,
    validate_file,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
INVALID = Path(__file__).parent / "data" / "invalid"
EXPECTED: dict[str, dict[str, Any]] = json.loads((INVALID / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("kind", "records"), [("sft", 40), ("dpo", 8), ("cpt", 8)])
def test_sample_dataset_passes(kind: DatasetKind, records: int) -> None:
    path = SAMPLES / kind / "train.jsonl"
    assert check_file_name(path.name) is None
    for chunk_size in (7, 1 << 16):
        assert validate_file(path, kind, chunk_size=chunk_size).records == records


def test_sft_sample_is_a_bilingual_support_dataset_with_a_system_prompt() -> None:
    records = [json.loads(line) for line in (SAMPLES / "sft" / "train.jsonl").read_text("utf-8").splitlines()]
    first_turns = [record["messages"][1]["content"] for record in records]
    assert all(record["messages"][0]["role"] == "system" for record in records)
    assert any(text.isascii() for text in first_turns) and any(not text.isascii() for text in first_turns)
    assert any(len(record["messages"]) > 3 for record in records)  # some multi-turn conversations


def test_sft_sidecar_names_a_training_type_the_sample_fits() -> None:
    sidecar = yaml.safe_load((SAMPLES / "sft" / "train.jsonl.flow.yaml").read_text("utf-8"))
    assert set(sidecar) >= {"model", "training_type", "hyper_parameters", "on_success"}
    assert set(sidecar["hyper_parameters"]) == {"n_epochs", "learning_rate", "batch_size"}
    assert sidecar["on_success"] == {"action": "deploy", "plan": "lora", "capacity": 1}
    kind = kind_for_training_type(sidecar["training_type"])
    assert validate_file(SAMPLES / "sft" / "train.jsonl", kind).records == 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_invalid_file_fails_as_recorded(name: str) -> None:
    expected = EXPECTED[name]
    with pytest.raises(DatasetError) as caught:
        validate_file(INVALID / name, expected["kind"], chunk_size=5)
    error = caught.value.to_dict()
    assert {key: error[key] for key in ("line", "field", "reason")} == {
        key: expected[key] for key in ("line", "field", "reason")
    }
    assert error["object_name"] == name


def test_every_golden_invalid_file_has_an_expectation() -> None:
    assert sorted(path.name for path in INVALID.glob("*.jsonl")) == sorted(EXPECTED)
