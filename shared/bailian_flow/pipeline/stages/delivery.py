"""job-succeeded → [importing → import-running →] deploying → deployment-pending → done."""

from __future__ import annotations

from bailian_flow.pipeline import reconcile
from bailian_flow.pipeline.runtime import Flow
from bailian_flow.pipeline.state import RunError
from bailian_flow.pipeline.transitions import Current, Outcome, claim, commit, create_or_find, fail, fetch_or_fail


async def step_job_succeeded(flow: Flow, current: Current) -> Outcome:
    state = current.state
    action = state.settings.on_success.action
    if state.imported_model or action == "deploy":
        suffix = reconcile.deploy_suffix(state.run_id, state.attempt)
        claimed = await claim(flow, current, "deploying", f"deploying with suffix {suffix}", deploy_suffix=suffix)
        if claimed is not None:
            await act_deploy(flow, claimed)
    elif action == "import":
        name = reconcile.import_name(state.run_id, state.attempt)
        claimed = await claim(flow, current, "importing", f"importing weights as {name}", import_name=name)
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
    deployment = await create_or_find(
        flow,
        current,
        create=lambda: flow.client.deployments.create(
            model_name=model,
            plan=plan.plan,
            capacity=plan.capacity,
            deploy_spec=plan.deploy_spec,
            suffix=suffix,
            name=f"bf-{state.run_id}",
        ),
        find=lambda: reconcile.find_deployment(flow, suffix),
        doing=f"deploying {model}",
        # The suffix is derived from this run alone: a 409 on it most likely means an earlier try made it.
        conflict_may_be_ours=True,
    )
    if deployment is not None:
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
    name = state.deployed_model
    deployment = await fetch_or_fail(flow, current, lambda: flow.client.deployments.get(name), f"deployment {name}")
    if deployment is None:
        return "again"
    status = deployment.status
    if status == "RUNNING":
        await commit(flow, current, "done", f"deployed {deployment.deployed_model}", deployment_status=status)
    elif status == "FAILED":
        reason = f"deployment {deployment.deployed_model} FAILED"
        await fail(flow, current, RunError(reason=reason, code="DeploymentFailed", retryable=True))
    elif status != state.deployment_status:
        changed = f"deployment {deployment.deployed_model} {status}"
        await commit(flow, current, "deployment-pending", changed, deployment_status=status)
    return "stop"


async def act_import(flow: Flow, current: Current) -> None:
    state = current.state
    spec = state.settings.on_success.import_
    name = state.import_name
    assert spec is not None and name is not None
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
        find=lambda: reconcile.find_import(flow, name),
        doing="importing custom weights",
    )
    if job is not None:
        await commit(flow, current, "import-running", f"import {job.job_id} {job.status}", import_job_id=job.job_id)


async def poll_import(flow: Flow, current: Current) -> Outcome:
    state = current.state
    assert state.import_job_id is not None
    job_id = state.import_job_id
    job = await fetch_or_fail(flow, current, lambda: flow.client.custom_models.get(job_id), f"import {job_id}")
    if job is None:
        return "again"
    if job.status == "SUCCEEDED":
        if not state.settings.on_success.deploy_after_import:
            await commit(flow, current, "done", f"imported {job.model_name}", imported_model=job.model_name)
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
