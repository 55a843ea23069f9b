"""Deployments and custom model import against the emulator."""

from __future__ import annotations

import asyncio

import pytest
from client_helpers import Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, DeploymentStatus, ImportStatus
from bailian_flow.client.errors import BadRequestError, ConflictError, NotFoundError


async def test_deployable_models_are_listed(client: BailianClient) -> None:
    models = [model async for model in client.deployments.models(page_size=2)]
    assert len(models) > 2  # more than one page was followed
    assert len({m.model_name for m in models}) == len(models)
    assert all(m.base_capacity for m in models)


async def test_deployment_lifecycle(client: BailianClient) -> None:
    models = {m.model_name: m async for m in client.deployments.models()}
    base = models["qwen3-14b"].base_capacity or 1
    created = await client.deployments.create("qwen3-14b", capacity=base, plan="lora", suffix="t1")
    assert created.status == DeploymentStatus.PENDING
    assert created.deployed_model
    with pytest.raises(ConflictError):
        await client.deployments.create("qwen3-14b", capacity=base, plan="lora", suffix="t1")
    for _ in range(100):
        current = await client.deployments.get(created.deployed_model)
        if current.status == DeploymentStatus.RUNNING:
            break
        await asyncio.sleep(0.1)
    assert current.status == DeploymentStatus.RUNNING and current.is_terminal
    scaled = await client.deployments.scale(created.deployed_model, base * 2)
    assert scaled.capacity == base * 2 or scaled.status == DeploymentStatus.UPDATING
    limited = await client.deployments.update(created.deployed_model, rpm_limit=100, tpm_limit=10000)
    assert limited.deployed_model == created.deployed_model
    listed = [d.deployed_model async for d in client.deployments.list()]
    assert created.deployed_model in listed
    deleting = await client.deployments.delete(created.deployed_model)
    assert deleting is not None and deleting.status in {DeploymentStatus.DELETING, "DELETED"}


async def test_deployment_list_paginates(client: BailianClient) -> None:
    for n in range(4):
        await client.deployments.create("qwen3-14b", capacity=1, plan="lora", suffix=f"p{n}")
    page = await client.deployments.list_page(1, 3)
    assert page.total == 4 and len(page.deployments) == 3
    assert len([d async for d in client.deployments.list(page_size=3)]) == 4


async def test_unknown_deployment_is_not_found(client: BailianClient) -> None:
    with pytest.raises(NotFoundError):
        await client.deployments.get("nope-123")


async def test_import_lifecycle(client: BailianClient, control: Control) -> None:
    storage = {"bucket_name": "weights", "object_key": "models/qwen3-32b-lora/"}
    job = await client.custom_models.create("qwen3-32b", storage, display_name="mine", weight_type="lora")
    assert job.status == ImportStatus.PENDING and job.job_id
    with pytest.raises(BadRequestError):
        await client.custom_models.delete(job.job_id)  # only terminal jobs
    await control.advance(120)
    done = await client.custom_models.get(job.job_id)
    assert done.status == ImportStatus.SUCCEEDED  # SUCCESSED or SUCCEEDED on the wire, one value here
    assert [j.job_id async for j in client.custom_models.list()] == [job.job_id]
    await client.custom_models.delete(job.job_id)
    with pytest.raises(NotFoundError):
        await client.custom_models.get(job.job_id)


async def test_import_pagination(client: BailianClient) -> None:
    storage = {"bucket_name": "weights", "object_key": "models/x/"}
    ids = {(await client.custom_models.create("qwen3-32b", storage)).job_id for _ in range(5)}
    assert {j.job_id async for j in client.custom_models.list(page_size=2)} == ids


async def test_import_object_key_must_be_a_folder(client: BailianClient) -> None:
    with pytest.raises(ValueError, match="end with '/'"):
        await client.custom_models.create("qwen3-32b", {"bucket_name": "b", "object_key": "models/file.bin"})


async def test_import_success_spelled_successed_reads_succeeded(client: BailianClient, control: Control) -> None:
    await control._call("POST", "/config", {"import_success_status": "SUCCESSED"})
    try:
        storage = {"bucket_name": "weights", "object_key": "models/y/"}
        job = await client.custom_models.create("qwen3-32b", storage)
        await control.advance(120)
        done = await client.custom_models.get(job.job_id)
        assert done.status == ImportStatus.SUCCEEDED and done.is_terminal
        assert [j.status async for j in client.custom_models.list()] == [ImportStatus.SUCCEEDED]
    finally:  # in case a reset does not restore it, leave the shared emulator as we found it
        await control._call("POST", "/config", {"import_success_status": "SUCCEEDED"})
