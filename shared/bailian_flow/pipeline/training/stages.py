"""file-ready → starting-job → training → job-succeeded: start the fine-tune and follow it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bailian_flow.client.errors import BailianError, QuotaExceededError
from bailian_flow.pipeline.protocol import admission, reconcile
from bailian_flow.pipeline.protocol.acting import create_or_find, fetch_or_fail
from bailian_flow.pipeline.protocol.cleanup import Made, delete_run_files, note_job_owner
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError
from bailian_flow.pipeline.protocol.transitions import Current, Outcome, claim, commit, fail, generation, record

if TYPE_CHECKING:
    from bailian_flow.client.models import FineTuneJob

log = logging.getLogger("bailian_flow.pipeline")

# How much of a failed job's log to quote in the run's error.
FAILURE_LOG_LINES = 3


async def step_file_ready(flow: Flow, current: Current) -> Outcome:
    # Both quotas a create may meet have a line: a newcomer queues behind runs waiting in either (a run admitted
    # from one of them goes on, or the two lines could hand it back and forth).
    lines = (admission.FINE_TUNE_JOBS, admission.TRAINING_SLOT)
    admitted = any(admission.admitted_for(current.state, quota) for quota in lines)
    for quota in () if admitted else lines:
        if await admission.must_wait(flow, current.state, quota):
            await admission.wait(flow, current, quota, "file-ready", why="other runs wait already")
            return "again"
    state = current.state
    first = state.claims.get("starting-job", 0) == 0
    name = reconcile.job_name(state.run_id, state.attempt, state.claims.get("starting-job", 0) + 1)
    # A file this attempt did not upload itself may have jobs already: set them aside before the first create.
    before = await reconcile.jobs_before_claim(flow, state) if first else {}
    claimed = await claim(flow, current, "starting-job", f"starting fine-tune {name}", job_name=name, **before)
    if claimed is not None:
        await act_start_job(flow, claimed)
    return "again"


async def act_start_job(flow: Flow, current: Current) -> None:
    state = current.state
    name = reconcile.job_name(state.run_id, state.attempt, generation(current))
    try:
        job = await _start_job(flow, current, name)
    except QuotaExceededError as exc:
        # "Too many fine-tune job in running" is the training-slot line, the 20-job quota its own; both are waits,
        # never a failure (service-contract.md#C8, #C10).
        await admission.wait_for_quota(flow, current, exc, admission.FINE_TUNE_JOBS, "file-ready")
        return
    if job is not None:
        # Retention finds the job's run by this note: the service may not keep our name (service-contract.md#C2).
        await note_job_owner(flow, job.job_id, state.run_id)
        await record(
            flow,
            current,
            [Made("job", job.job_id)],
            "training",
            f"fine-tune {job.job_id} {job.status}",
            job_id=job.job_id,
            # The name sent: the service may answer the job id instead (service-contract.md#C2); only a hint.
            job_name=name,
            job_status=job.status,
        )


async def _start_job(flow: Flow, current: Current, name: str) -> FineTuneJob | None:
    state = current.state
    return await create_or_find(
        flow,
        current,
        create=lambda: flow.client.fine_tunes.create(
            model=state.settings.model,
            training_file_ids=[state.file_id] if state.file_id else [],
            validation_file_ids=[state.validation_file_id] if state.validation_file_id else None,
            training_type=state.settings.training_type,
            hyper_parameters=state.settings.hyper_parameters or None,
            job_name=name,
        ),
        # By the files it trains on, the name only a hint (service-contract.md#C2, #C3).
        find=lambda gen: reconcile.find_job_of(flow, state, gen),
        doing=f"starting fine-tune of {state.settings.model}",
    )


async def _failure_detail(flow: Flow, job_id: str) -> str:
    """The last lines of a failed job's log: the job object itself carries no reason."""
    try:
        head = await flow.client.fine_tunes.logs(job_id, offset=0, line=1)
        tail = await flow.client.fine_tunes.logs(
            job_id, offset=max(head.total - FAILURE_LOG_LINES, 0), line=FAILURE_LOG_LINES
        )
    except BailianError as exc:
        log.warning("fine-tune %s: logs unavailable (%s)", job_id, type(exc).__name__)
        return "its logs could not be read"
    lines = [line.strip() for line in tail.logs if line.strip()]
    return " | ".join(lines) if lines else "its log is empty"


async def poll_training(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.job_id is not None
    job_id = state.job_id
    job = await fetch_or_fail(
        flow, current, lambda: flow.client.fine_tunes.get(job_id), f"fine-tune {job_id}", seen_as=f"fine-tune:{job_id}"
    )
    if job is None:
        return "again"
    status = job.status
    # An ended job no longer reads its files: they would only hold the account's file quota (the dataset stays).
    gone = await delete_run_files(flow, state) if job.is_terminal else []
    noted = f"; files deleted: {', '.join(gone)}" if gone else ""
    if status == "SUCCEEDED":
        await commit(
            flow,
            current,
            "job-succeeded",
            f"fine-tune {job.job_id} succeeded: {job.finetuned_output}{noted}",
            job_status=status,
            finetuned_output=job.finetuned_output,
            files_deleted=gone,
            usage={"tokens": job.usage} if job.usage is not None else None,
        )
    elif status == "FAILED":
        detail = await _failure_detail(flow, job.job_id)
        await fail(
            flow,
            current,
            RunError(reason=f"fine-tune {job.job_id} FAILED: {detail}", code="JobFailed", retryable=True),
            changed=f"fine-tune {job.job_id} failed{noted}",
            files_deleted=gone,
        )
    elif status == "CANCELED":
        changed = f"fine-tune {job.job_id} was canceled{noted}"
        await commit(flow, current, "canceled", changed, job_status=status, files_deleted=gone)
    elif status != state.job_status:
        await commit(flow, current, "training", f"fine-tune {job.job_id} {status}", job_status=status)
    return "stop"
