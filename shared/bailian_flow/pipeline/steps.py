"""The state machine: given a run's newest entry, do the next thing, exactly once.

Every handler calls `advance` with the stages it is willing to act on; each step either commits the next entry
(win or lose, the loop re-reads) or says there is nothing to do now. Side effects follow intent → act → record:
a step first claims the next sequence number with an intent entry, and only the delivery that won the claim
calls Bailian. Finding an intent it did not write, younger than the lease, a delivery leaves it to its owner.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from bailian_flow.client.errors import (
    APIConnectionError,
    APIStatusError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    UploadFailedError,
)
from bailian_flow.pipeline import reconcile
from bailian_flow.pipeline.ingest import SourceMissing, ingest
from bailian_flow.pipeline.runtime import Flow, utc_now
from bailian_flow.pipeline.state import INTENTS, RunError, RunState, Stage
from bailian_flow.pipeline.transitions import Current, commit, fail, load
from bailian_flow.validate import DatasetError

log = logging.getLogger("bailian_flow.pipeline")

Outcome = Literal["again", "stop"]
Step = Callable[[Flow, Current], Awaitable[Outcome]]

# Which fact an intent follows: a stale intent is re-announced as that fact.
FACT_BEFORE: dict[str, Stage] = {
    "uploading": "received",
    "starting-job": "file-ready",
    "importing": "job-succeeded",
    "deploying": "job-succeeded",
}

ON_UPLOAD: frozenset[str] = frozenset({"received", "uploading"})
ON_FILE_READY: frozenset[str] = frozenset({"file-ready", "starting-job"})
ON_SUCCESS: frozenset[str] = frozenset({"job-succeeded", "importing", "deploying"})
POLLING: frozenset[str] = frozenset({"training", "import-running", "deployment-pending"})


def server_fault(exc: APIStatusError) -> bool:
    """A fault on Bailian's side: worth FC's retries, not a verdict on the run's input."""
    return exc.status is None or exc.status >= 500


def api_error(exc: APIStatusError, doing: str) -> RunError:
    return RunError(
        reason=f"{doing}: Bailian answered {exc.status} {exc.code}: {exc.message}",
        code=exc.code,
        retryable=isinstance(exc, RateLimitError) or server_fault(exc),
    )


async def _claim(flow: Flow, current: Current, stage: Stage, changed: str, **updates: object) -> Current | None:
    """Write an intent; the returned Current is the claimed entry, None when another delivery won."""
    claims = dict(current.state.claims)
    claims[stage] = claims.get(stage, 0) + 1
    state = await commit(flow, current, stage, changed, claims=claims, **updates)
    if state is None:
        return None
    return Current(seq=current.seq + 1, state=state, at=utc_now(), writer=flow.writer)


def _may_exist(current: Current) -> bool:
    """Whether an earlier claim of this intent (in this attempt) may have made the resource already."""
    return current.state.claims.get(current.state.stage, 0) > 1


# --- upload: received → uploading → file-ready --------------------------------------------------------------


async def step_received(flow: Flow, current: Current) -> Outcome:
    state = current.state
    if state.source.file_id:
        await commit(flow, current, "file-ready", "registered file given", file_id=state.source.file_id)
        return "again"
    claimed = await _claim(flow, current, "uploading", f"uploading {state.source.key}")
    if claimed is not None:
        await act_upload(flow, claimed)
    return "again"


async def _ensure_file(flow: Flow, current: Current, key: str, role: str) -> tuple[str, int, list[str]]:
    state = current.state
    description = reconcile.file_description(state.run_id, state.attempt, role)
    if _may_exist(current):
        found = await reconcile.find_file(flow, description)
        if found is not None:
            return found.file_id, state.records or 0, []
    try:
        result = await ingest(flow, key, training_type=state.settings.training_type, description=description)
    except APIConnectionError as exc:
        if exc.maybe_processed:
            found = await reconcile.find_file(flow, description)
            if found is not None:
                return found.file_id, state.records or 0, []
        raise
    return result.file_id, result.records, result.warnings


async def act_upload(flow: Flow, current: Current) -> None:
    state = current.state
    assert state.source.key is not None
    try:
        file_id, records, warnings = await _ensure_file(flow, current, state.source.key, "train")
        validation_id = None
        if state.settings.validation_key:
            validation_id, _, _ = await _ensure_file(flow, current, state.settings.validation_key, "validation")
    except DatasetError as exc:
        error = RunError(reason=str(exc), object=exc.object_name, line=exc.line, field=exc.field, code="InvalidDataset")
        await fail(flow, current, error)
        return
    except SourceMissing as exc:
        await fail(flow, current, RunError(reason=str(exc), object=exc.key, code="SourceMissing"))
        return
    except UploadFailedError as exc:
        await fail(flow, current, RunError(reason=f"Bailian rejected the file: {exc}", object=state.source.key))
        return
    except APIStatusError as exc:
        if server_fault(exc) or isinstance(exc, RateLimitError):
            raise
        error = api_error(exc, "uploading the dataset")
        await fail(flow, current, error.model_copy(update={"object": state.source.key}))
        return
    await commit(
        flow,
        current,
        "file-ready",
        f"file {file_id} registered ({records} records)",
        file_id=file_id,
        validation_file_id=validation_id,
        records=records,
        warnings=warnings,
    )


# --- training: file-ready → starting-job → training → job-succeeded ------------------------------------------


async def step_file_ready(flow: Flow, current: Current) -> Outcome:
    name = reconcile.job_name(current.state.run_id, current.state.attempt)
    claimed = await _claim(flow, current, "starting-job", f"starting fine-tune {name}", job_name=name)
    if claimed is not None:
        await act_start_job(flow, claimed)
    return "again"


async def act_start_job(flow: Flow, current: Current) -> None:
    state = current.state
    name = state.job_name or reconcile.job_name(state.run_id, state.attempt)
    job = await reconcile.find_job(flow, name) if _may_exist(current) else None
    if job is None:
        try:
            job = await flow.client.fine_tunes.create(
                model=state.settings.model,
                training_file_ids=[state.file_id] if state.file_id else [],
                validation_file_ids=[state.validation_file_id] if state.validation_file_id else None,
                training_type=state.settings.training_type,
                hyper_parameters=state.settings.hyper_parameters or None,
                job_name=name,
            )
        except APIConnectionError as exc:
            job = await reconcile.find_job(flow, name) if exc.maybe_processed else None
            if job is None:
                raise
        except APIStatusError as exc:
            if server_fault(exc):
                raise
            # 429 here is the fine-tune quota (the client already waited out short throttling).
            await fail(flow, current, api_error(exc, f"starting fine-tune of {state.settings.model}"))
            return
    await commit(
        flow,
        current,
        "training",
        f"fine-tune {job.job_id} {job.status}",
        job_id=job.job_id,
        job_status=job.status,
    )


async def poll_training(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.job_id is not None
    try:
        job = await flow.client.fine_tunes.get(state.job_id)
    except NotFoundError:
        await fail(flow, current, RunError(reason=f"fine-tune {state.job_id} no longer exists", code="NotFound"))
        return "again"
    status = job.status
    if status == "SUCCEEDED":
        await commit(
            flow,
            current,
            "job-succeeded",
            f"fine-tune {job.job_id} succeeded: {job.finetuned_output}",
            job_status=status,
            finetuned_output=job.finetuned_output,
        )
    elif status == "FAILED":
        detail = getattr(job, "message", None) or getattr(job, "error_message", None) or "see its logs"
        await fail(
            flow,
            current,
            RunError(reason=f"fine-tune {job.job_id} FAILED: {detail}", code="JobFailed", retryable=True),
            changed=f"fine-tune {job.job_id} failed",
        )
    elif status == "CANCELED":
        await commit(flow, current, "canceled", f"fine-tune {job.job_id} was canceled", job_status=status)
    elif status != state.job_status:
        await commit(flow, current, "training", f"fine-tune {job.job_id} {status}", job_status=status)
    return "stop"


# --- after training: job-succeeded → (importing → import-running →) deploying → deployment-pending → done ----


async def step_job_succeeded(flow: Flow, current: Current) -> Outcome:
    state = current.state
    action = state.settings.on_success.action
    if state.imported_model or action == "deploy":
        suffix = reconcile.deploy_suffix(state.run_id, state.attempt)
        claimed = await _claim(flow, current, "deploying", f"deploying with suffix {suffix}", deploy_suffix=suffix)
        if claimed is not None:
            await act_deploy(flow, claimed)
    elif action == "import":
        name = reconcile.import_name(state.run_id, state.attempt)
        claimed = await _claim(flow, current, "importing", f"importing weights as {name}", import_name=name)
        if claimed is not None:
            await act_import(flow, claimed)
    else:
        await commit(flow, current, "done", f"training done; nothing more to do: {state.finetuned_output}")
    return "again"


async def act_deploy(flow: Flow, current: Current) -> None:
    state = current.state
    suffix = state.deploy_suffix or reconcile.deploy_suffix(state.run_id, state.attempt)
    model = state.imported_model or state.finetuned_output
    assert model is not None
    plan = state.settings.on_success
    deployment = await reconcile.find_deployment(flow, suffix) if _may_exist(current) else None
    if deployment is None:
        try:
            deployment = await flow.client.deployments.create(
                model_name=model,
                plan=plan.plan,
                capacity=plan.capacity,
                deploy_spec=plan.deploy_spec,
                suffix=suffix,
                name=f"bf-{state.run_id}",
            )
        except (APIConnectionError, ConflictError) as exc:
            # A 409 on our own suffix, or a dropped answer: the deployment may be ours already.
            ambiguous = isinstance(exc, ConflictError) or exc.maybe_processed
            deployment = await reconcile.find_deployment(flow, suffix) if ambiguous else None
            if deployment is None:
                if isinstance(exc, ConflictError):
                    await fail(flow, current, api_error(exc, f"deploying {model}"))
                    return
                raise
        except APIStatusError as exc:
            if server_fault(exc):
                raise
            await fail(flow, current, api_error(exc, f"deploying {model}"))
            return
    await commit(
        flow,
        current,
        "deployment-pending",
        f"deployment {deployment.deployed_model} {deployment.status}",
        deployed_model=deployment.deployed_model,
        deployment_status=deployment.status,
    )


async def poll_deployment(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.deployed_model is not None
    try:
        deployment = await flow.client.deployments.get(state.deployed_model)
    except NotFoundError:
        await fail(flow, current, RunError(reason=f"deployment {state.deployed_model} disappeared", code="NotFound"))
        return "again"
    status = deployment.status
    if status == "RUNNING":
        await commit(flow, current, "done", f"deployed {deployment.deployed_model}", deployment_status=status)
    elif status == "FAILED":
        await fail(
            flow,
            current,
            RunError(
                reason=f"deployment {deployment.deployed_model} FAILED",
                code="DeploymentFailed",
                retryable=True,
            ),
        )
    elif status != state.deployment_status:
        await commit(
            flow,
            current,
            "deployment-pending",
            f"deployment {deployment.deployed_model} {status}",
            deployment_status=status,
        )
    return "stop"


async def act_import(flow: Flow, current: Current) -> None:
    state = current.state
    spec = state.settings.on_success.import_
    assert spec is not None and state.import_name is not None
    job = await reconcile.find_import(flow, state.import_name) if _may_exist(current) else None
    if job is None:
        try:
            job = await flow.client.custom_models.create(
                model_name=spec.model_name or state.settings.model,
                display_name=state.import_name,
                source="oss",
                weight_type=spec.weight_type,
                storage_info={
                    "bucket_name": spec.bucket or state.source.bucket or flow.settings.bucket,
                    "object_key": spec.object_key,
                },
            )
        except APIConnectionError as exc:
            job = await reconcile.find_import(flow, state.import_name) if exc.maybe_processed else None
            if job is None:
                raise
        except APIStatusError as exc:
            if server_fault(exc):
                raise
            await fail(flow, current, api_error(exc, "importing custom weights"))
            return
    await commit(flow, current, "import-running", f"import {job.job_id} {job.status}", import_job_id=job.job_id)


async def poll_import(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.import_job_id is not None
    job = await flow.client.custom_models.get(state.import_job_id)
    if job.status == "SUCCEEDED":
        if state.settings.on_success.deploy_after_import:
            suffix = reconcile.deploy_suffix(state.run_id, state.attempt)
            claimed = await _claim(
                flow,
                current,
                "deploying",
                f"import done ({job.model_name}); deploying",
                imported_model=job.model_name,
                deploy_suffix=suffix,
            )
            if claimed is not None:
                await act_deploy(flow, claimed)
        else:
            await commit(flow, current, "done", f"imported {job.model_name}", imported_model=job.model_name)
    elif job.status == "FAILED":
        code = getattr(job, "error_code", None) or "ImportFailed"
        detail = getattr(job, "error_message", None)  # not in every answer; quoted when the service gives it
        reason = f"import {job.job_id} FAILED ({code})" + (f": {detail}" if detail else "")
        await fail(flow, current, RunError(reason=reason, code=code, retryable=True))
    return "stop"


# --- the loop --------------------------------------------------------------------------------------------------

FACT_STEPS: dict[str, Step] = {
    "received": step_received,
    "file-ready": step_file_ready,
    "job-succeeded": step_job_succeeded,
    "training": poll_training,
    "import-running": poll_import,
    "deployment-pending": poll_deployment,
}
RESUMES: dict[str, Callable[[Flow, Current], Awaitable[None]]] = {
    "uploading": act_upload,
    "starting-job": act_start_job,
    "importing": act_import,
    "deploying": act_deploy,
}


async def resume_intent(flow: Flow, current: Current) -> Outcome:
    """An intent whose actor is us (an FC retry) or presumed dead: claim it anew, look up, then act."""
    if current.writer != flow.writer and current.age() < flow.lease_seconds:
        return "stop"
    state = current.state
    reclaimed = await _claim(flow, current, state.stage, f"resuming {state.stage} (previous attempt unfinished)")
    if reclaimed is not None:
        await RESUMES[state.stage](flow, reclaimed)
    return "again"


async def advance(flow: Flow, run_id: str, acts: frozenset[str], *, max_steps: int = 12) -> RunState | None:
    """Drive the run forward while its stage is one this handler acts on."""
    current = await load(flow, run_id)
    for _ in range(max_steps):
        if current is None or current.state.stage not in acts:
            break
        stage = current.state.stage
        step = resume_intent if stage in INTENTS else FACT_STEPS[stage]
        outcome = await step(flow, current)
        current = await load(flow, run_id)
        if outcome == "stop":
            break
    return None if current is None else current.state
