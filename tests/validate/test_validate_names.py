"""Bailian's file-name rule, the conforming names derived from OSS keys, and training types."""

from __future__ import annotations

import pytest

from bailian_flow.validate import MAX_STEM_LENGTH, check_file_name, kind_for_training_type, safe_file_name


@pytest.mark.parametrize("name", ["train.jsonl", "Support_v2-final.jsonl", "a" * 120 + ".jsonl", "data"])
def test_conforming_names(name: str) -> None:
    assert check_file_name(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("my data.jsonl", "may use only ASCII letters, digits, '_' and '-' (found ' ')"),
        ("训练数据.jsonl", "may use only ASCII letters, digits, '_' and '-' (found '据数练训')"),
        ("train.v2.jsonl", "(found '.')"),
        ("a" * 121 + ".jsonl", "121 characters long (at most 120)"),
        ("datasets/train.jsonl", "must not contain a path separator"),
        (".jsonl", "may use only"),
        ("", "the file name is empty"),
        ("train.jsön", "the extension '.jsön' must be ASCII letters and digits"),
    ],
)
def test_non_conforming_names_say_why(name: str, problem: str) -> None:
    found = check_file_name(name)
    assert found is not None and problem in found


def test_conforming_key_keeps_its_base_name() -> None:
    assert safe_file_name("datasets/support/train-2024_06.jsonl") == "train-2024_06.jsonl"
    assert safe_file_name("datasets/support/train") == "train.jsonl"


@pytest.mark.parametrize(
    ("key", "expected_prefix"),
    [
        ("datasets/support/customer service v2.jsonl", "customer_service_v2-"),
        ("datasets/café menu.jsonl", "cafe_menu-"),
        ("datasets/客服数据.jsonl", "dataset-"),
        ("datasets/客服 data (copy).jsonl", "data_copy-"),
        ("datasets/train.v2.jsonl", "train_v2-"),
    ],
)
def test_non_conforming_key_gets_a_conforming_deterministic_name(key: str, expected_prefix: str) -> None:
    name = safe_file_name(key)
    assert check_file_name(name) is None
    assert name.startswith(expected_prefix)
    assert name.endswith(".jsonl")
    assert safe_file_name(key) == name


def test_keys_that_fold_to_the_same_text_get_different_names() -> None:
    names = {
        safe_file_name(key) for key in ("d/a b.jsonl", "d/a+b.jsonl", "e/a b.jsonl", "d/数据.jsonl", "d/资料.jsonl")
    }
    assert len(names) == 5


def test_long_key_is_truncated_to_the_stem_limit() -> None:
    name = safe_file_name("datasets/" + "长" * 10 + "x" * 300 + ".jsonl")
    assert check_file_name(name) is None
    assert len(name.removesuffix(".jsonl")) == MAX_STEM_LENGTH


@pytest.mark.parametrize(
    ("training_type", "kind"),
    [("sft", "sft"), ("efficient_sft", "sft"), ("dpo_full", "dpo"), ("dpo_lora", "dpo"), ("cpt", "cpt")],
)
def test_kind_for_training_type(training_type: str, kind: str) -> None:
    assert kind_for_training_type(training_type) == kind


def test_unknown_training_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown training_type 'grpo'"):
        kind_for_training_type("grpo")
