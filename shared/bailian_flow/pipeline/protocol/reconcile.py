"""Deterministic resource names derived from the run id, and look-ups by those names.

Bailian's creates take no idempotency key, so every resource a run makes carries a name derived from the run id
and the attempt: a delivery that died between calling the API and recording the result (or whose connection
dropped after the server acted) finds the resource instead of making a second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from bailian_flow.client.models import Batch, CompatFile, Deployment, FileInfo, FineTuneJob, ImportJob
    from bailian_flow.pipeline.protocol.runtime import Flow

T = TypeVar("T")

_SUFFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NAME_GENERATION = "-g"
_DESCRIPTION_GENERATION = " gen="


def _generation(separator: str, generation: int) -> str:
    return "" if generation <= 1 else f"{separator}{generation}"


def file_description(run_id: str, attempt: int, role: str, generation: int = 1) -> str:
    return f"bailian-flow run={run_id} attempt={attempt} role={role}" + _generation(_DESCRIPTION_GENERATION, generation)


def job_name(run_id: str, attempt: int, generation: int = 1) -> str:
    return f"bf-{run_id}-{attempt}" + _generation(_NAME_GENERATION, generation)


def import_name(run_id: str, attempt: int, generation: int = 1) -> str:
    return f"bf-{run_id}-{attempt}" + _generation(_NAME_GENERATION, generation)


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


def batch_tag(batch: Batch) -> str | None:
    """The shard tag a batch carries: the last word of its metadata ds_name (a user's own name may precede it)."""
    name = (batch.metadata or {}).get("ds_name")
    return name.split(" ")[-1] if isinstance(name, str) else None


async def find_batch(flow: Flow, tag: str) -> Batch | None:
    """The batch whose metadata ds_name ends with the shard's tag."""
    async for batch in flow.client.batches.list():
        if batch_tag(batch) == tag:
            return batch
    return None


async def batches_of_run(flow: Flow, run_id: str) -> list[Batch]:
    """Every batch of the run's shards (any attempt, any generation), whatever its status."""
    prefix = f"bf-{run_id}-"
    return [batch async for batch in flow.client.batches.list() if (batch_tag(batch) or "").startswith(prefix)]


async def batch_files_of_run(flow: Flow, run_id: str) -> list[CompatFile]:
    """Every input file of the run's shards, named after their tags."""
    prefix = f"bf-{run_id}-"
    return [
        found
        async for found in flow.client.compat_files.list(purpose="batch")
        if (found.filename or "").startswith(prefix)
    ]


# -- generations: each claim of an intent names its resource apart --------------------------------------------------
#
# A re-claim of an intent (after a lease, or after its actor released it) may race the first actor's create, and
# Bailian keeps no name unique but a deployment's suffix. So each claim's resource carries its generation (the claim
# count of that intent in this attempt; the first spelled as before) and a look-up can tell whose resource it
# found: its own after an ambiguous create, any generation when adopting what a dead actor made.


def generation_of(name: str | None, base: str, separator: str) -> int | None:
    """The generation a resource name spells for `base` (`base` itself is 1), None when it is not one of them."""
    if name == base:
        return 1
    if name is None or not name.startswith(base + separator):
        return None
    tail = name[len(base) + len(separator) :]
    return int(tail) if tail.isdigit() and int(tail) > 1 else None


async def _of_attempt(
    listing: AsyncIterator[T], name_of: Callable[[T], str | None], base: str, separator: str
) -> list[tuple[int, T]]:
    """Every listed resource whose name is a generation of `base`, with that generation."""
    found = []
    async for item in listing:
        generation = generation_of(name_of(item), base, separator)
        if generation is not None:
            found.append((generation, item))
    return found


async def jobs_of_attempt(flow: Flow, run_id: str, attempt: int) -> list[tuple[int, FineTuneJob]]:
    base = job_name(run_id, attempt)
    return await _of_attempt(flow.client.fine_tunes.list(), lambda job: job.job_name, base, _NAME_GENERATION)


async def files_of_attempt(flow: Flow, run_id: str, attempt: int, role: str) -> list[tuple[int, FileInfo]]:
    base = file_description(run_id, attempt, role)
    return await _of_attempt(flow.client.files.list(), lambda info: info.description, base, _DESCRIPTION_GENERATION)


async def imports_of_attempt(flow: Flow, run_id: str, attempt: int) -> list[tuple[int, ImportJob]]:
    base = import_name(run_id, attempt)
    return await _of_attempt(flow.client.custom_models.list(), lambda job: job.display_name, base, _NAME_GENERATION)


# -- everything a run made, every attempt and generation (for cancel and cleanup) ------------------------------------


async def jobs_of_run(flow: Flow, run_id: str) -> list[FineTuneJob]:
    prefix = f"bf-{run_id}-"
    return [job async for job in flow.client.fine_tunes.list() if (job.job_name or "").startswith(prefix)]


async def files_of_run(flow: Flow, run_id: str) -> list[FileInfo]:
    prefix = f"bailian-flow run={run_id} "
    return [info async for info in flow.client.files.list() if (info.description or "").startswith(prefix)]


async def imports_of_run(flow: Flow, run_id: str) -> list[ImportJob]:
    prefix = f"bf-{run_id}-"
    return [job async for job in flow.client.custom_models.list() if (job.display_name or "").startswith(prefix)]


async def deployments_of_run(flow: Flow, run_id: str, attempts: int) -> list[Deployment]:
    """The run's deployments: Bailian keeps suffixes unique, so one per attempt at most."""
    suffixes = {f"-{deploy_suffix(run_id, attempt)}" for attempt in range(1, attempts + 1)}
    return [
        item async for item in flow.client.deployments.list() if any(item.deployed_model.endswith(s) for s in suffixes)
    ]


def pick(found: list[tuple[int, T]], generation: int | None, usable: Callable[[T], bool]) -> T | None:
    """The resource to adopt: `generation`'s own, or (None) the oldest usable one of any generation."""
    candidates = sorted(
        ((gen, item) for gen, item in found if generation is None or gen == generation), key=lambda pair: pair[0]
    )
    for _, item in candidates:
        if usable(item):
            return item
    return None


async def find_job_of(flow: Flow, run_id: str, attempt: int, generation: int | None) -> FineTuneJob | None:
    # A canceled job was undone on purpose (or by a person): never adopt it, make a fresh one.
    found = await jobs_of_attempt(flow, run_id, attempt)
    return pick(found, generation, lambda job: job.status not in ("CANCELED", "CANCELING"))


async def find_file_of(flow: Flow, run_id: str, attempt: int, role: str, generation: int | None) -> FileInfo | None:
    return pick(await files_of_attempt(flow, run_id, attempt, role), generation, lambda _: True)


async def find_import_of(flow: Flow, run_id: str, attempt: int, generation: int | None) -> ImportJob | None:
    return pick(await imports_of_attempt(flow, run_id, attempt), generation, lambda _: True)
