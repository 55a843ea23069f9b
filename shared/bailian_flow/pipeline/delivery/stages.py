"""job-succeeded → [importing → import-running →] deploying → deployment-pending → done."""

from __future__ import annotations

from bailian_flow.client.errors import APIStatusError
from bailian_flow.pipeline.delivery.lifecycle import finish
from bailian_flow.pipeline.protocol import cleanup, offered, reconcile
from bailian_flow.pipeline.protocol.acting import api_error, create_or_find, fetch_or_fail, server_fault
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError, RunState
from bailian_flow.pipeline.protocol.transitions import Current, Outcome, claim, commit, fail, generation, record


async def step_job_succeeded(flow: Flow, current: Current) -> Outcome:
    state = current.state
    action = state.settings.on_success.action
    if state.imported_model or action == "deploy":
        suffix = reconcile.deploy_suffix(state.run_id, state.attempt)
        claimed = await claim(flow, current, "deploying", f"deploying with suffix {suffix}", deploy_suffix=suffix)
        if claimed is not None:
            await act_deploy(flow, claimed)
    elif action == "import":
        name = reconcile.import_name(state.run_id, state.attempt, state.claims.get("importing", 0) + 1)
        claimed = await claim(flow, current, "importing", f"importing weights as {name}", import_name=name)
        if claimed is not None:
            await act_import(flow, claimed)
    else:
        await finish(flow, current, f"training done; nothing more to do: {state.finetuned_output}")
    return "again"


async def _model_to_deploy(flow: Flow, current: Current) -> str | None:
    """The model the run deploys: imported weights, the job's final model, or an exported checkpoint.

    A checkpoint is exported under the name Bailian lists for it (export is repeatable under the same name, so
    a resumed intent just exports again). None when the run was failed instead.
    """
    state = current.state
    wanted = state.settings.on_success.checkpoint
    if state.imported_model or wanted == "last":
        return state.imported_model or state.finetuned_output
    assert state.job_id is not None and state.finetuned_output is not None
    job_id = state.job_id
    try:
        checkpoints = await flow.client.fine_tunes.checkpoints(job_id)
        found = next((item for item in checkpoints if item.checkpoint == wanted), None)
        if found is None:
            have = ", ".join(item.checkpoint or "?" for item in checkpoints) or "none"
            reason = f"checkpoint {wanted} does not exist in fine-tune {job_id} (it has: {have})"
            await fail(flow, current, RunError(reason=reason, field="on_success.checkpoint", code="NoCheckpoint"))
            return None
        name = found.model_name or f"{state.finetuned_output}-{wanted}"
        await flow.client.fine_tunes.export(job_id, wanted, name)
    except APIStatusError as exc:
        if server_fault(exc):
            raise
        await fail(flow, current, api_error(exc, f"exporting {wanted} of {job_id}"))
        return None
    return name


async def act_deploy(flow: Flow, current: Current) -> None:
    state = current.state
    refused = offered.refusal(flow.settings.region, state.kind, state.settings)
    if refused is not None:
        # Refused when the run opened (a run opened before that check existed meets it here): PTU never serves a
        # model of ours, so no PTU create (and no suffix, which PTU takes none of) is ever sent
        # (service-contract.md#C21, #C22).
        await fail(flow, current, RunError(reason=refused.reason, field=refused.field, code="InvalidSettings"))
        return
    suffix = state.deploy_suffix or reconcile.deploy_suffix(state.run_id, state.attempt)
    model = await _model_to_deploy(flow, current)
    if model is None:
        return
    plan = state.settings.on_success
    await cleanup.note_deployment_owner(flow, suffix, state.run_id, state.attempt)
    deployment = await create_or_find(
        flow,
        current,
        create=lambda: flow.client.deployments.create(
            model_name=model,
            plan=plan.plan,
            capacity=plan.capacity,
            deploy_spec=plan.deploy_spec,
            ptu_capacity=plan.ptu_capacity.model_dump() if plan.ptu_capacity else None,
            suffix=suffix,
            name=f"bf-{state.run_id}",
        ),
        # Bailian keeps suffixes unique, so every claim of this attempt shares one: a second create meets 409.
        find=lambda _gen: reconcile.find_deployment(flow, suffix),
        doing=f"deploying {model}",
        # The suffix is derived from this run alone: a 409 on it most likely means an earlier try made it.
        conflict_may_be_ours=True,
    )
    if deployment is not None:
        await record(
            flow,
            current,
            [Made("deployment", deployment.deployed_model)],
            "deployment-pending",
            f"deployment {deployment.deployed_model} {deployment.status}",
            deployed_model=deployment.deployed_model,
            deployment_status=deployment.status,
        )


async def poll_deployment(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.deployed_model is not None
    name = state.deployed_model
    deployment = await fetch_or_fail(
        flow, current, lambda: flow.client.deployments.get(name), f"deployment {name}", seen_as=f"deployment:{name}"
    )
    if deployment is None:
        return "again"
    status = deployment.status
    if status == "RUNNING":
        changed, warnings = await _apply_limits(flow, state)
        changed = f"deployed {deployment.deployed_model}{changed}"
        if await finish(flow, current, changed, deployment_status=status, warnings=state.warnings + warnings) is None:
            # Lost to another writer (another run's retention note, a re-claim): read again and finish on top.
            return "again"
    elif status == "FAILED":
        reason = f"deployment {deployment.deployed_model} FAILED"
        await fail(flow, current, RunError(reason=reason, code="DeploymentFailed", retryable=True))
    elif status != state.deployment_status:
        changed = f"deployment {deployment.deployed_model} {status}"
        await commit(flow, current, "deployment-pending", changed, deployment_status=status)
    return "stop"


async def _apply_limits(flow: Flow, state: RunState) -> tuple[str, list[str]]:
    """Set the deployment's rpm/tpm limits (an update, which repeats harmlessly); (note, warnings)."""
    wanted = state.settings.on_success
    if wanted.rpm_limit is None and wanted.tpm_limit is None:
        return "", []
    assert state.deployed_model is not None
    try:
        await flow.client.deployments.update(
            state.deployed_model, rpm_limit=wanted.rpm_limit, tpm_limit=wanted.tpm_limit
        )
    except APIStatusError as exc:
        if server_fault(exc):
            raise
        # The model is deployed and serving: a refused limit is worth a warning, not undoing the delivery.
        return "", [f"rpm/tpm limits not applied: Bailian answered {exc.status} {exc.code}: {exc.message}"]
    return f"; limits rpm={wanted.rpm_limit} tpm={wanted.tpm_limit}", []


async def act_import(flow: Flow, current: Current) -> None:
    state = current.state
    spec = state.settings.on_success.import_
    name = reconcile.import_name(state.run_id, state.attempt, generation(current))
    assert spec is not None
    job = await create_or_find(
        flow,
        current,
        create=lambda: flow.client.custom_models.create(
            model_name=spec.model_name or state.settings.model,
            display_name=name,
            source="oss",
            weight_type=spec.weight_type,
            storage_info={
                "bucket_name": spec.bucket or state.source.bucket or flow.settings.bucket,
                "object_key": spec.object_key,
            },
        ),
        find=lambda gen: reconcile.find_import_of(flow, state.run_id, state.attempt, gen),
        doing="importing custom weights",
    )
    if job is not None:
        changed = f"import {job.job_id} {job.status}"
        await record(
            flow,
            current,
            [Made("import", job.job_id)],
            "import-running",
            changed,
            import_job_id=job.job_id,
            import_name=name,
        )


async def poll_import(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.import_job_id is not None
    job_id = state.import_job_id
    job = await fetch_or_fail(
        flow, current, lambda: flow.client.custom_models.get(job_id), f"import {job_id}", seen_as=f"import:{job_id}"
    )
    if job is None:
        return "again"
    if job.status == "SUCCEEDED":
        if not state.settings.on_success.deploy_after_import:
            await finish(flow, current, f"imported {job.model_name}", imported_model=job.model_name)
            return "stop"
        suffix = reconcile.deploy_suffix(state.run_id, state.attempt)
        changed = f"import done ({job.model_name}); deploying"
        claimed = await claim(flow, current, "deploying", changed, imported_model=job.model_name, deploy_suffix=suffix)
        if claimed is not None:
            await act_deploy(flow, claimed)
    elif job.status == "FAILED":
        code = getattr(job, "error_code", None) or "ImportFailed"
        detail = getattr(job, "error_message", None)  # not in every answer; quoted when the service gives it
        reason = f"import {job.job_id} FAILED ({code})" + (f": {detail}" if detail else "")
        await fail(flow, current, RunError(reason=reason, code=code, retryable=True))
    return "stop"
