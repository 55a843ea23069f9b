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
    from bailian_flow.pipeline.protocol.state import RunState

T = TypeVar("T")

_SUFFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NAME_GENERATION = "-g"
_DESCRIPTION_GENERATION = " gen="


def _generation(separator: str, generation: int) -> str:
    return "" if generation <= 1 else f"{separator}{generation}"


def file_description(run_id: str, attempt: int, role: str, generation: int = 1) -> str:
    return f"bailian-flow run={run_id} attempt={attempt} role={role}" + _generation(_DESCRIPTION_GENERATION, generation)


# A native file is uploaded under a name that says what `file_description` says: the list echoes `name`, while
# whether it echoes `description` is undocumented (service-contract.md#C18).
# The extension is the dataset's (`.jsonl`, or `.zip` for media datasets, which the service checks by name).
_FILE_SUFFIXES = (".jsonl", ".zip")


def file_name(run_id: str, attempt: int, role: str, generation: int = 1, suffix: str = ".jsonl") -> str:
    assert suffix in _FILE_SUFFIXES
    return f"bf-{run_id}-{attempt}-{role}" + _generation(_NAME_GENERATION, generation) + suffix


def _file_stem(info: FileInfo) -> str | None:
    name = info.name or ""
    if not name.startswith("bf-"):
        return None
    return next((name[: -len(suffix)] for suffix in _FILE_SUFFIXES if name.endswith(suffix)), None)


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


def _file_generation(info: FileInfo, run_id: str, attempt: int, role: str) -> int | None:
    """The generation a listed file is of this run's attempt and role, by its name, or by its description when
    the list echoes one; None when it is not one of them."""
    by_name = generation_of(_file_stem(info), f"bf-{run_id}-{attempt}-{role}", _NAME_GENERATION)
    if by_name is not None:
        return by_name
    return generation_of(info.description, file_description(run_id, attempt, role), _DESCRIPTION_GENERATION)


async def files_of_attempt(flow: Flow, run_id: str, attempt: int, role: str) -> list[tuple[int, FileInfo]]:
    found = []
    async for info in flow.client.files.list():
        generation = _file_generation(info, run_id, attempt, role)
        if generation is not None:
            found.append((generation, info))
    return found


# -- fine-tunes: found by the files they train on (service-contract.md#C2, #C3) ---------------------------------------
#
# The service documents `job_name` as "the same as job_id": a name we send may be replaced. What it does echo is
# `training_file_ids`, and every attempt trains on a file it uploaded itself (`file_name`), so the files identify
# the attempt's jobs. The name stays a hint: a job that kept a name of its own is ours only if it is our name, and
# then the name tells its generation; a job that did not keep one is of an unknown generation. A run that trains
# on the user's own file (`source.file_id`), or an attempt that trains again on an earlier attempt's file, also
# needs the jobs made from that file before its first claim set aside (`foreign_jobs`, `earlier_jobs`, listed at
# that claim by `jobs_before_claim`), and the job's `model` to be the run's.


def _named_generation(job: FineTuneJob, run_id: str, attempt: int) -> tuple[bool, int | None]:
    """(whether the job may be this attempt's, its generation when its kept name says it)."""
    if not job.name_kept():
        return True, None
    generation = generation_of(job.job_name, job_name(run_id, attempt), _NAME_GENERATION)
    return generation is not None, generation


def _trains_on(state: RunState) -> list[str]:
    return [state.file_id] if state.file_id else []


async def jobs_before_claim(flow: Flow, state: RunState) -> dict[str, list[str]]:
    """What the first claim of `starting-job` in an attempt records when the attempt's file is not new: the jobs
    already made from it (one list; nothing to list for a file the attempt uploaded itself)."""
    files = _trains_on(state)
    reused = state.file_id in state.earlier_file_ids
    if not files or not (state.source.file_id or reused):
        return {}
    ids = [job.job_id for job in await flow.client.fine_tunes.made_from(files)]
    if state.attempt == 1 or not reused:
        return {"foreign_jobs": sorted(set(state.foreign_jobs) | set(ids))}
    return {"earlier_jobs": [job_id for job_id in ids if job_id not in state.foreign_jobs]}


async def jobs_of_attempt(flow: Flow, state: RunState) -> list[tuple[int | None, FineTuneJob]]:
    """The attempt's jobs, oldest first, each with its generation when its name says it."""
    files = _trains_on(state)
    if not files:
        return []
    skip = set(state.foreign_jobs) | set(state.earlier_jobs)
    found: list[tuple[int | None, FineTuneJob]] = []
    for job in await flow.client.fine_tunes.made_from(files):
        ours, generation = _named_generation(job, state.run_id, state.attempt)
        if ours and job.job_id not in skip and (job.model in (None, state.settings.model)):
            found.append((generation, job))
    return found


async def imports_of_attempt(flow: Flow, run_id: str, attempt: int) -> list[tuple[int, ImportJob]]:
    base = import_name(run_id, attempt)
    return await _of_attempt(flow.client.custom_models.list(), lambda job: job.display_name, base, _NAME_GENERATION)


# -- everything a run made, every attempt and generation (for cancel and cleanup) ------------------------------------


async def jobs_of_run(flow: Flow, state: RunState) -> list[FineTuneJob]:
    """Every fine-tune of the run, any attempt: made from a file it trained on, or named by it (a hint the service
    may drop, but a kept name of ours is certainly ours)."""
    files = {*state.earlier_file_ids, *_trains_on(state)}
    prefix = f"bf-{state.run_id}-"
    skip = set(state.foreign_jobs)
    found = []
    async for job in flow.client.fine_tunes.list():
        named = job.name_kept() and (job.job_name or "").startswith(prefix)
        made = len(job.training_file_ids) == 1 and job.training_file_ids[0] in files and job.job_id not in skip
        if named or (made and not job.name_kept()):
            found.append(job)
    return found


_ROLES = ("train", "validation")


def _of_run(info: FileInfo, run_id: str) -> bool:
    stem = _file_stem(info) or ""
    if stem.startswith(f"bf-{run_id}-"):
        rest = stem[len(f"bf-{run_id}-") :].split("-")
        return len(rest) >= 2 and rest[0].isdigit() and rest[1] in _ROLES
    return (info.description or "").startswith(f"bailian-flow run={run_id} ")


async def files_of_run(flow: Flow, run_id: str) -> list[FileInfo]:
    """Every native file the run uploaded, by its name (or its description, when listed; #C18)."""
    return [info async for info in flow.client.files.list() if _of_run(info, run_id)]


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


async def find_job_of(flow: Flow, state: RunState, generation: int | None) -> FineTuneJob | None:
    """The attempt's job to adopt: `generation`'s own (after our ambiguous create), or (None) the oldest usable one.

    A job whose generation is unknown (the service kept no name) may be any claim's: adopting the oldest keeps
    the first; after an ambiguous create the newest is the likeliest ours. Whatever is not adopted is undone by
    the winner's sweep (`transitions.record`) or by cancel."""
    # A canceled job was undone on purpose (or by a person): never adopt it, make a fresh one.
    found = [
        (gen, job)
        for gen, job in await jobs_of_attempt(flow, state)
        if job.status not in ("CANCELED", "CANCELING") and (generation is None or gen in (None, generation))
    ]
    if generation is not None:
        exact = [job for gen, job in found if gen == generation]
        unknown = [job for gen, job in found if gen is None]
        return exact[0] if exact else (unknown[-1] if unknown else None)
    found.sort(key=lambda pair: pair[0] if pair[0] is not None else 0)  # stable: oldest first among unknown ones
    return found[0][1] if found else None


async def find_file_of(flow: Flow, run_id: str, attempt: int, role: str, generation: int | None) -> FileInfo | None:
    return pick(await files_of_attempt(flow, run_id, attempt, role), generation, lambda _: True)


async def find_import_of(flow: Flow, run_id: str, attempt: int, generation: int | None) -> ImportJob | None:
    return pick(await imports_of_attempt(flow, run_id, attempt), generation, lambda _: True)
