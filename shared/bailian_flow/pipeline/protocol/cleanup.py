"""Deleting what a run made on Bailian: its files, its fine-tune job, its deployment.

Every helper is idempotent: a resource already gone (404) counts as deleted, so a duplicate delivery, a retry
after a crash, or two handlers cleaning the same run change nothing. Cancel, completion, job retention,
teardown, the deployment TTL and compensation (an actor whose create lost the commit that would have recorded
it, `transitions.record`) all delete through these, and none of them ever touches the dataset in OSS.
`made_by`/`sweep` find everything of a run by the deterministic names of `reconcile` (every attempt and every
claim's generation), for cancel, which must also reach what no entry records.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from bailian_flow.client.errors import APIStatusError, BadRequestError, NotFoundError
from bailian_flow.pipeline.kinds.batch.batch_state import RUNNING_STATUSES
from bailian_flow.pipeline.protocol import reconcile
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.settings import retention_keep_last
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import RECORD_TRIES, Current, commit, load
from bailian_flow.runlog import is_run_id

log = logging.getLogger("bailian_flow.pipeline")

# `reconcile.job_name`: what marks a job as the pipeline's, and which run made it.
_OUR_JOB = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_-]+)-(?P<attempt>\d+)(?:-g\d+)?$")


def run_files(state: RunState) -> list[str]:
    """The Bailian files this run uploaded itself (a file id the user gave is theirs to keep)."""
    if state.source.key is None:
        return []
    return [file_id for file_id in (state.file_id, state.validation_file_id) if file_id]


async def delete_file(flow: Flow, file_id: str) -> None:
    with contextlib.suppress(NotFoundError):
        await flow.client.files.delete(file_id)


async def delete_run_files(flow: Flow, state: RunState) -> list[str]:
    """Delete the run's training and validation files; returns the ids now gone."""
    gone = []
    for file_id in run_files(state):
        await delete_file(flow, file_id)
        gone.append(file_id)
    return gone


async def delete_job(flow: Flow, job_id: str) -> bool:
    """Delete a finished fine-tune job. False when Bailian refuses (the job has not ended)."""
    try:
        await flow.client.fine_tunes.delete(job_id)
    except NotFoundError:
        return True
    except BadRequestError as exc:
        log.info("fine-tune %s not deleted: %s", job_id, exc.code)
        return False
    return True


async def undeploy(flow: Flow, deployed_model: str) -> None:
    """Start deleting a deployment (it goes DELETING, then away); one already gone is fine."""
    with contextlib.suppress(NotFoundError):
        await flow.client.deployments.delete(deployed_model)


def owner_of_job(job_name: str | None) -> str | None:
    """The run id a pipeline job belongs to, from its deterministic name; None for anyone else's job."""
    match = _OUR_JOB.match(job_name or "")
    return match["run_id"] if match and is_run_id(match["run_id"]) else None


def _done_with_job(state: RunState) -> bool:
    """Whether another run's retention may delete this run's job: it has deployed (or ended) and is not `keep`.

    A run on its way to a deployment may still need the job's model; a `keep` run keeps its job whoever asks;
    a job whose run is unknown here is left alone too (the caller passes only known runs).
    """
    if state.settings.job_retention == "keep":
        return False
    return state.terminal or state.stage == "deployment-pending"


@dataclass
class Retention:
    """What job retention did when a run finished: its own job, and older jobs pruned by keep-last-N."""

    own_job_deleted: bool = False
    pruned: list[str] = field(default_factory=list)

    def describe(self, policy: str) -> str:
        parts = []
        if self.own_job_deleted:
            parts.append("its fine-tune job deleted")
        if self.pruned:
            parts.append("older jobs deleted: " + ", ".join(self.pruned))
        return f"; retention {policy}: " + "; ".join(parts) if parts else ""


async def apply_retention(flow: Flow, state: RunState) -> Retention:
    """Apply the run's `job_retention` now that it is done with its job.

    - `delete-after-deploy`: the run's own job goes once the run no longer needs it (its model deployed, or
      other weights imported instead); with `on_success: none` the job's model is the deliverable and stays.
    - `keep-last-N`: of the pipeline's succeeded jobs, the N newest stay; older ones whose runs are finished
      and whose own policy is not `keep` are deleted.
    - `keep`: nothing is deleted.
    """
    result = Retention()
    policy = state.settings.job_retention
    if policy == "delete-after-deploy" and state.job_id and (state.deployed_model or state.imported_model):
        result.own_job_deleted = await delete_job(flow, state.job_id)
        return result
    keep_last = retention_keep_last(policy)
    if keep_last is None:
        return result
    ours = [
        job
        async for job in flow.client.fine_tunes.list()
        if job.status == "SUCCEEDED" and owner_of_job(job.job_name) is not None
    ]
    # Newest first; the listing is newest first too, and the sort is stable, so ties keep the service's order.
    ours.sort(key=lambda job: str(job.create_time or ""), reverse=True)
    for job in ours[keep_last:]:
        owner_id = owner_of_job(job.job_name)
        if owner_id == state.run_id:
            result.own_job_deleted = await delete_job(flow, job.job_id)
            continue
        why = (
            f"fine-tune job {job.job_id} deleted by job retention {policy} of run {state.run_id} "
            f"(only the {keep_last} newest succeeded jobs are kept)"
        )
        if owner_id and await _prune(flow, owner_id, job.job_id, why):
            result.pruned.append(f"{job.job_id} (run {owner_id})")
    return result


async def _prune(flow: Flow, owner_id: str, job_id: str, why: str) -> bool:
    """Delete another run's succeeded job, recorded in that run's own history; False when the job stays.

    The owner's entry is the fence: it is committed on top of the very state that allowed the deletion, so a
    change committed meanwhile (a retry, which needs the job's model) makes it lose and the decision is taken
    again on the newer state. The job goes only once the owner's log says so; after a crash in between, the
    next pass finds the job still listed and the entry written, and deletes it without a second entry.
    """
    for _ in range(RECORD_TRIES):
        owner = await load(flow, owner_id)
        if owner is None or not _done_with_job(owner.state):
            return False
        if owner.state.job_id != job_id:
            # An earlier attempt's job, which no state follows: nothing to fence; deleted, then recorded.
            if not await delete_job(flow, job_id):
                return False
            await _record_deletion(flow, owner, why)
            return True
        if owner.state.job_deleted:
            return await delete_job(flow, job_id)
        if await commit(flow, owner, owner.state.stage, why, event="run.job_deleted", job_deleted=True) is not None:
            return await delete_job(flow, job_id)
    log.info("run %s kept changing; its fine-tune %s waits for the next retention pass", owner_id, job_id)
    return False


async def _record_deletion(flow: Flow, owner: Current, why: str) -> None:
    for _ in range(RECORD_TRIES):
        if await commit(flow, owner, owner.state.stage, why, event="run.job_deleted") is not None:
            return
        latest = await load(flow, owner.state.run_id)
        if latest is None:
            return
        owner = latest
    log.warning("run %s: its history misses a note lost to busier writers: %s", owner.state.run_id, why)


# -- undoing by name: compensation and cancel ------------------------------------------------------------------------

# A batch shard's input file (compatible files API) and its batch, found by the shard's tag.
Kind = Literal["file", "job", "deployment", "import", "batch-file", "batch"]
# Kinds a sweep of the whole run finds for every shard at once: never swept for one shard's result (a re-claim of
# the shard adopts what an earlier claim made by its tag instead), only when the whole run goes (cancel).
BATCH_KINDS: frozenset[Kind] = frozenset({"batch", "batch-file"})
_NOUN: dict[str, str] = {
    "file": "file",
    "job": "fine-tune",
    "deployment": "deployment",
    "import": "import",
    "batch-file": "batch file",
    "batch": "batch",
}


@dataclass(frozen=True)
class Made:
    """One Bailian resource a run made (or may have made)."""

    kind: Kind
    id: str

    def __str__(self) -> str:
        return f"{_NOUN[self.kind]} {self.id}"

    def recorded_in(self, state: RunState) -> bool:
        """Whether the run's state follows this very resource (then it is the run's, not a duplicate)."""
        if self.kind == "file":
            return self.id in (state.file_id, state.validation_file_id)
        if self.kind == "job":
            return self.id == state.job_id
        if self.kind == "deployment":
            return self.id == state.deployed_model
        if self.kind in ("batch-file", "batch"):
            shards = state.batch.shards if state.batch is not None else []
            return any(self.id in (shard.file_id, shard.batch_id) for shard in shards)
        return self.id == state.import_job_id


async def undo(flow: Flow, made: Made) -> str:
    """Cancel (a fine-tune) or delete (anything else) `made`; what was done, as a phrase for the history."""
    try:
        if made.kind == "job":
            try:
                await flow.client.fine_tunes.cancel(made.id)
            except BadRequestError:
                # It ended already (a job only ended jobs may be deleted): a finished model nobody records goes.
                return f"deleted {made}" if await delete_job(flow, made.id) else f"{made} left as it is (ended)"
            return f"canceled {made}"
        if made.kind == "file":
            await delete_file(flow, made.id)
        elif made.kind == "batch":
            await flow.client.batches.cancel(made.id)
            return f"canceled {made}"
        elif made.kind == "batch-file":
            await flow.client.compat_files.delete(made.id)
        elif made.kind == "deployment":
            await undeploy(flow, made.id)
        else:
            await flow.client.custom_models.delete(made.id)
    except NotFoundError:
        return f"{made} was already gone"
    except APIStatusError as exc:
        if exc.status is not None and exc.status >= 500:
            raise
        # A fine-tune that already ended cannot be canceled, an import still running cannot be deleted yet.
        log.info("undo of %s refused: %s %s", made, exc.status, exc.code)
        return f"{made} left as it is ({exc.code})"
    return f"deleted {made}"


async def made_by(
    flow: Flow, state: RunState, kinds: Collection[Kind] = ("file", "job", "deployment", "import")
) -> list[Made]:
    """Every resource of this run on Bailian, found by name (every attempt, every generation) or by its record.

    A file given by the user (`source.file_id`) is theirs, never the run's: only files the run uploaded (known
    by their description) are listed.
    """
    found: list[Made] = []
    if "file" in kinds:
        found += [Made("file", info.file_id) for info in await reconcile.files_of_run(flow, state.run_id)]
    if "job" in kinds:
        jobs = await reconcile.jobs_of_run(flow, state.run_id)
        # A failed or canceled job costs nothing more; a running one is canceled, a succeeded one deleted. The
        # recorded one is included even when a lagging list hides it.
        found += [Made("job", job.job_id) for job in jobs if job.status not in ("FAILED", "CANCELED", "CANCELING")]
        if state.job_id and state.job_id not in {job.job_id for job in jobs}:
            found.append(Made("job", state.job_id))
    if "deployment" in kinds:
        deployments = await reconcile.deployments_of_run(flow, state.run_id, state.attempt)
        found += [Made("deployment", item.deployed_model) for item in deployments]
        if state.deployed_model and state.deployed_model not in {item.deployed_model for item in deployments}:
            found.append(Made("deployment", state.deployed_model))
    if "import" in kinds:
        found += [Made("import", job.job_id) for job in await reconcile.imports_of_run(flow, state.run_id)]
        if state.import_job_id:
            found.append(Made("import", state.import_job_id))
    if "batch" in kinds:
        batches = await reconcile.batches_of_run(flow, state.run_id)
        found += [Made("batch", batch.id) for batch in batches if batch.status in RUNNING_STATUSES]
    if "batch-file" in kinds:
        found += [Made("batch-file", item.id) for item in await reconcile.batch_files_of_run(flow, state.run_id)]
    return list(dict.fromkeys(found))


async def sweep(
    flow: Flow,
    state: RunState,
    *,
    keep: Collection[Made] = (),
    kinds: Collection[Kind] = ("file", "job", "deployment", "import"),
) -> list[str]:
    """Undo every resource of the run except `keep`; what was done, one phrase per resource.

    Fine-tunes go first: a file still in use by a running job is not deleted from under it.
    """
    order = {"job": 0, "batch": 0, "import": 1, "deployment": 2, "file": 3, "batch-file": 3}
    targets = sorted(
        (made for made in await made_by(flow, state, kinds) if made not in keep), key=lambda m: order[m.kind]
    )
    return [await undo(flow, made) for made in targets]
