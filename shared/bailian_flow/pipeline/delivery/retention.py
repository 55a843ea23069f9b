"""Job retention: what becomes of succeeded fine-tune jobs once their run no longer needs them.

`keep-last-N` commits its deletion of another run's job in *that* run's log first, on top of the state that allowed
it, then deletes: a retry committed meanwhile wins and keeps the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bailian_flow.pipeline.protocol.cleanup import delete_job, job_owners, owner_of_job
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.settings import retention_keep_last
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import RECORD_TRIES, Current, commit, load

log = logging.getLogger("bailian_flow.pipeline")


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
    # Which run made each job: noted when it was made, the name only a hint (service-contract.md#C2).
    owners = await job_owners(flow)
    if state.job_id:
        owners.setdefault(state.job_id, state.run_id)
    ours = [
        job
        async for job in flow.client.fine_tunes.list()
        if job.status == "SUCCEEDED" and owner_of_job(job, owners) is not None
    ]
    # Newest first; the listing is newest first too, and the sort is stable, so ties keep the service's order.
    ours.sort(key=lambda job: str(job.create_time or ""), reverse=True)
    for job in ours[keep_last:]:
        owner_id = owner_of_job(job, owners)
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
