"""Base-model deployment markers: the sample parses to the documented create body; every bad field is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bailian_flow.validate import DatasetError
from bailian_flow.validate._deploy import parse_deploy_marker

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "deploy" / "qwen-flash.deploy.yaml"


def test_sample_marker_gives_the_seed_ptu_body() -> None:
    spec = parse_deploy_marker(SAMPLE.read_bytes(), object_name=SAMPLE.name)
    assert spec.ttl_seconds == 24 * 3600
    assert spec.create_body("ignored") == {
        "model_name": "qwen-flash-2025-07-28",
        "plan": "ptu",
        "name": "qwen-flash-ptu",
        "ptu_capacity": {"input_tpm": 10000, "output_tpm": 1000},
    }


def test_mu_marker_with_capacity_suffix_and_limits() -> None:
    marker = {"deploy": {"model": "qwen3-8b", "plan": "mu", "deploy_spec": "MU1", "capacity": 2, "suffix": "a1",
                         "ttl": "1d 12h", "rpm_limit": 60}}  # fmt: skip
    spec = parse_deploy_marker(marker, object_name="m.deploy.yaml")
    assert spec.ttl_seconds == 36 * 3600
    assert spec.create_body("m") == {
        "model_name": "qwen3-8b",
        "plan": "mu",
        "name": "m",
        "deploy_spec": "MU1",
        "capacity": 2,
        "suffix": "a1",
        "rpm_limit": 60,
    }


PTU = {"model": "qwen-plus", "plan": "ptu", "ptu_capacity": {"input_tpm": 1, "output_tpm": 1}}


@pytest.mark.parametrize(
    ("deploy", "field", "reason"),
    [
        ({**PTU, "plan": "gpu"}, "deploy.plan", "expected one of ptu, mu, cu, lora, got 'gpu'"),
        ({**PTU, "model": ""}, "deploy.model", "expected the name of a Bailian model"),
        ({**PTU, "ptu_capacity": None}, "deploy.ptu_capacity", "required with plan ptu: {input_tpm, output_tpm}"),
        ({**PTU, "ptu_capacity": {"input_tpm": 5}}, "deploy.ptu_capacity.output_tpm", "required: tokens per minute"),
        (
            {**PTU, "ptu_capacity": {"input_tpm": 0, "output_tpm": 1}},
            "deploy.ptu_capacity.input_tpm",
            "expected a positive whole number, got 0",
        ),
        ({**PTU, "suffix": "x"}, "deploy.suffix", "a PTU deployment takes no suffix (the service names it)"),
        ({**PTU, "capacity": 2}, "deploy.capacity", "a PTU deployment is sized by ptu_capacity, not capacity"),
        ({**PTU, "ttl": "soon"}, "deploy.ttl", "expected a duration like 30m, 24h or 7d, got 'soon'"),
        ({**PTU, "ttl": 5}, "deploy.ttl", "expected between 1 minute and 365 days, got 5 s"),
        ({**PTU, "region": "cn"}, "deploy.region", "unknown key"),
        ({"model": "qwen3-8b", "plan": "mu"}, "deploy.deploy_spec", "required with plan mu (for example MU1)"),
        (
            {"model": "emo", "plan": "lora", "suffix": "toolong99"},
            "deploy.suffix",
            "expected 1 to 8 ASCII letters or digits",
        ),
        ({"model": "emo", "plan": "lora", "ptu_capacity": {}}, "deploy.ptu_capacity", "only with plan ptu, not lora"),
    ],
)
def test_bad_marker_names_its_field(deploy: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_deploy_marker({"deploy": deploy}, object_name="x.deploy.yaml")
    assert (caught.value.object_name, caught.value.field) == ("x.deploy.yaml", field)
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("deploy: [", "not valid YAML"),
        ("model: qwen-plus\n", "expected a mapping with the single key 'deploy'"),
        ("x" * (65 << 10), "the marker is larger than 65,536 bytes"),
    ],
)
def test_unreadable_marker(text: str, reason: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_deploy_marker(text, object_name="x.deploy.yaml")
    assert caught.value.field is None and caught.value.reason.startswith(reason)
