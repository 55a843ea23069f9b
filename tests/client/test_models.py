"""Models accept what the service may add tomorrow: unknown fields and unknown statuses parse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bailian_flow.client import models
from bailian_flow.client.models.custom_models import ImportJob, ImportStatus
from bailian_flow.client.models.deployments import Deployment, DeploymentStatus
from bailian_flow.client.models.fine_tunes import FineTuneCreate, FineTuneJob, FineTuneStatus, HyperParameters


def test_unknown_fields_are_kept() -> None:
    job = FineTuneJob.model_validate({"job_id": "ft-1", "status": "RUNNING", "brand_new_field": {"x": 1}, "usage": 10})
    assert job.model_extra == {"brand_new_field": {"x": 1}}
    assert job.usage == 10


def test_unknown_statuses_parse_and_are_not_terminal() -> None:
    job = FineTuneJob.model_validate({"job_id": "ft-1", "status": "PAUSED_FOR_MAINTENANCE"})
    assert job.status == "PAUSED_FOR_MAINTENANCE" and not job.is_terminal
    ptu = Deployment.model_validate({"deployed_model": "m", "status": "WAIT_PRE_PAID_BILLING_TO_DEPLOYING"})
    assert ptu.status == DeploymentStatus.WAIT_PRE_PAID_BILLING_TO_DEPLOYING and not ptu.is_terminal
    assert FineTuneStatus.is_terminal("CANCELED") and not FineTuneStatus.is_terminal("CANCELING")


def test_import_success_spellings_are_one_value() -> None:
    for spelling in ("SUCCESSED", "SUCCEEDED"):
        job = ImportJob.model_validate({"job_id": "i-1", "status": spelling})
        assert job.status == ImportStatus.SUCCEEDED and job.is_terminal


def test_learning_rate_is_a_number_or_a_string() -> None:
    # A number, however the answer spells it (service-contract.md#C6).
    assert HyperParameters.model_validate({"learning_rate": "1.6e-5"}).learning_rate == 1.6e-5
    assert HyperParameters.model_validate({"learning_rate": 2e-5}).learning_rate == 2e-5
    body = FineTuneCreate(model="m", training_file_ids=["f"], hyper_parameters={"learning_rate": 1e-4}).to_body()
    assert body == {"model": "m", "training_file_ids": ["f"], "hyper_parameters": {"learning_rate": 1e-4}}


def test_requests_are_validated() -> None:
    with pytest.raises(ValidationError):
        FineTuneCreate(model="m")
    with pytest.raises(ValidationError):
        models.DeploymentCreate(model_name="m", suffix="much-too-long")


def test_models_package_exports_resolve() -> None:
    for name in models.__all__:
        assert getattr(models, name).__name__ == name
