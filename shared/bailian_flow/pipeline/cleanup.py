"""Deleting what a run made on Bailian: its files, its fine-tune job, its deployment.

Every helper is idempotent: a resource already gone (404) counts as deleted, so a duplicate delivery, a retry
after a crash, or two handlers cleaning the same run change nothing. Cancel, completion, job retention,
teardown and the deployment TTL all delete through these, and none of them ever touches the dataset in OSS.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass, field

from bailian_flow.client.errors import BadRequestError, NotFoundError
from bailian_flow.pipeline.runtime import Flow
from bailian_flow.pipeline.settings import retention_keep_last
from bailian_flow.pipeline.state import RunState
from bailian_flow.pipeline.transitions import load
from bailian_flow.runlog import is_run_id

log = logging.getLogger("bailian_flow.pipeline")

# `reconcile.job_name`: what marks a job as the pipeline's, and which run made it.
_OUR_JOB = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_-]+)-(?P<attempt>\d+)$")


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
        owner = await load(flow, owner_id) if owner_id else None
        if owner is None or not _done_with_job(owner.state):
            continue
        if await delete_job(flow, job.job_id):
            result.pruned.append(f"{job.job_id} (run {owner_id})")
    return result
