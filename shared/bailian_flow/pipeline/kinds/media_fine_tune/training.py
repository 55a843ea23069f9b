"""file-ready → starting-job → training → job-succeeded: start the media fine-tune and follow it.

The same intent → act → record steps as every fine-tune (one job name per run, attempt and claim; a lost create
found by that name). A media job's request is the Wan reference's: the zip's file id, `efficient_sft` and the
hyper-parameters checked at `received` (`rules.py`).
"""

from __future__ import annotations

from bailian_flow.client.errors import QuotaExceededError
from bailian_flow.pipeline.protocol import admission, reconcile
from bailian_flow.pipeline.protocol.cleanup import Made, delete_run_files
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError
from bailian_flow.pipeline.protocol.transitions import (
    Current,
    Outcome,
    claim,
    commit,
    create_or_find,
    fail,
    fetch_or_fail,
    generation,
    record,
)


async def step_file_ready(flow: Flow, current: Current) -> Outcome:
    if await admission.must_wait(flow, current.state, admission.FINE_TUNE_JOBS):
        await admission.wait(flow, current, admission.FINE_TUNE_JOBS, "file-ready", why="other runs wait already")
        return "again"
    state = current.state
    name = reconcile.job_name(state.run_id, state.attempt, state.claims.get("starting-job", 0) + 1)
    claimed = await claim(flow, current, "starting-job", f"starting fine-tune {name}", job_name=name)
    if claimed is not None:
        await act_start_job(flow, claimed)
    return "again"


async def act_start_job(flow: Flow, current: Current) -> None:
    state = current.state
    name = reconcile.job_name(state.run_id, state.attempt, generation(current))
    try:
        job = await create_or_find(
            flow,
            current,
            create=lambda: flow.client.fine_tunes.create(
                model=state.settings.model,
                training_file_ids=[state.file_id] if state.file_id else [],
                training_type=state.settings.training_type,
                hyper_parameters=state.settings.hyper_parameters or None,
                job_name=name,
            ),
            find=lambda gen: reconcile.find_job_of(flow, state.run_id, state.attempt, gen),
            doing=f"starting fine-tune of {state.settings.model}",
        )
    except QuotaExceededError as exc:
        await admission.wait_for_quota(flow, current, exc, admission.FINE_TUNE_JOBS, "file-ready")
        return
    if job is not None:
        await record(
            flow,
            current,
            [Made("job", job.job_id)],
            "training",
            f"fine-tune {job.job_id} {job.status}",
            job_id=job.job_id,
            job_name=job.job_name or name,
            job_status=job.status,
        )


async def poll_training(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.job_id is not None
    job_id = state.job_id
    job = await fetch_or_fail(
        flow, current, lambda: flow.client.fine_tunes.get(job_id), f"fine-tune {job_id}", seen_as=f"fine-tune:{job_id}"
    )
    if job is None:
        return "again"
    # An ended job no longer reads its file: it would only hold the account's file quota (the zip stays in OSS).
    gone = await delete_run_files(flow, state) if job.is_terminal else []
    noted = f"; files deleted: {', '.join(gone)}" if gone else ""
    if job.status == "SUCCEEDED":
        await commit(
            flow,
            current,
            "job-succeeded",
            f"fine-tune {job_id} succeeded: {job.finetuned_output}{noted}",
            job_status=job.status,
            finetuned_output=job.finetuned_output,
            files_deleted=gone,
            usage={"tokens": job.usage} if job.usage is not None else None,
        )
    elif job.status == "FAILED":
        error = RunError(reason=f"fine-tune {job_id} FAILED (see its logs)", code="JobFailed", retryable=True)
        await fail(flow, current, error, changed=f"fine-tune {job_id} failed{noted}", files_deleted=gone)
    elif job.status == "CANCELED":
        await commit(flow, current, "canceled", f"fine-tune {job_id} was canceled{noted}", files_deleted=gone)
    elif job.status != state.job_status:
        await commit(flow, current, "training", f"fine-tune {job_id} {job.status}", job_status=job.status)
    return "stop"
