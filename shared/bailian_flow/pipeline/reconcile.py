"""Deterministic resource names derived from the run id, and look-ups by those names.

Bailian's creates take no idempotency key, so every resource a run makes carries a name derived from the run id
and the attempt: a delivery that died between calling the API and recording the result (or whose connection
dropped after the server acted) finds the resource instead of making a second one.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bailian_flow.client.models import Batch, CompatFile, Deployment, FileInfo, FineTuneJob, ImportJob
    from bailian_flow.pipeline.runtime import Flow

_SUFFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def file_description(run_id: str, attempt: int, role: str) -> str:
    return f"bailian-flow run={run_id} attempt={attempt} role={role}"


def job_name(run_id: str, attempt: int) -> str:
    return f"bf-{run_id}-{attempt}"


def import_name(run_id: str, attempt: int) -> str:
    return f"bf-{run_id}-{attempt}"


def deploy_suffix(run_id: str, attempt: int) -> str:
    """≤8 characters of [a-z0-9], unique per run and attempt (Bailian suffixes are global and short)."""
    digest = int.from_bytes(hashlib.sha256(f"{run_id}.{attempt}".encode()).digest()[:8], "big")
    chars = []
    for _ in range(8):
        digest, index = divmod(digest, len(_SUFFIX_ALPHABET))
        chars.append(_SUFFIX_ALPHABET[index])
    # A letter first: some services reject names whose segments start with a digit.
    return "f" + "".join(chars[:7])


async def find_file(flow: Flow, description: str) -> FileInfo | None:
    async for info in flow.client.files.list():
        if info.description == description:
            return info
    return None


async def find_job(flow: Flow, name: str) -> FineTuneJob | None:
    async for job in flow.client.fine_tunes.list():
        if job.job_name == name:
            return job
    return None


async def find_deployment(flow: Flow, suffix: str) -> Deployment | None:
    async for deployment in flow.client.deployments.list():
        if deployment.deployed_model.endswith(f"-{suffix}"):
            return deployment
    return None


async def find_import(flow: Flow, display_name: str) -> ImportJob | None:
    async for job in flow.client.custom_models.list():
        if job.display_name == display_name:
            return job
    return None


async def find_compat_file(flow: Flow, filename: str) -> CompatFile | None:
    async for found in flow.client.compat_files.list(purpose="batch"):
        if found.filename == filename:
            return found
    return None


async def find_batch(flow: Flow, tag: str) -> Batch | None:
    """The batch whose metadata ds_name ends with the run's tag (a user's own name may precede it)."""
    async for batch in flow.client.batches.list():
        name = (batch.metadata or {}).get("ds_name")
        if isinstance(name, str) and name.split(" ")[-1] == tag:
            return batch
    return None
