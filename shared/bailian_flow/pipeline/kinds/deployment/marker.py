"""Opening deploy runs: from a marker object `<deployments prefix>**/<name>.deploy.yaml`, or a REST body
`{"deploy": {...}}` holding the same mapping (checked by `validate._deploy.parse_deploy_marker`, the one place).

The same marker version (bucket, key, ETag) is the same run, and so is the same request body: a duplicate event or
request finds the run instead of deploying twice. A bad marker is a FAILED run naming the marker and the field; a
bad request is a 400 naming the field, and no run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from bailian_flow.pipeline.protocol.runtime import Flow, iso_z
from bailian_flow.pipeline.protocol.settings import RunSettings, SettingsError
from bailian_flow.pipeline.protocol.state import RunError, Source
from bailian_flow.pipeline.protocol.transitions import create, load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import bare_etag
from bailian_flow.validate._deploy import MAX_MARKER_BYTES, DeploySpec, parse_deploy_marker
from bailian_flow.validate._errors import DatasetError

from .state import DeployState


def _settings(flow: Flow, spec: DeploySpec) -> RunSettings:
    """The run settings the delivery leg reads (plan, sizing, limits, TTL) from a deploy spec."""
    defaults = RunSettings.from_defaults(flow.settings.defaults)
    on_success = defaults.on_success.model_copy(
        update={
            "action": "deploy",
            # Shown as the run's plan; the capacity-only form (no plan) is the deploy mapping's, which act_deploy sends.
            "plan": spec.plan or defaults.on_success.plan,
            "capacity": spec.capacity or 1,
            "deploy_spec": spec.deploy_spec,
            "ptu_capacity": None,
            "rpm_limit": spec.rpm_limit,
            "tpm_limit": spec.tpm_limit,
            "deployment_ttl": spec.ttl_seconds,
        }
    )
    if spec.ptu_capacity:
        from bailian_flow.pipeline.protocol.settings import PtuCapacity

        on_success = on_success.model_copy(update={"ptu_capacity": PtuCapacity(**spec.ptu_capacity)})
    # No fine-tune job is this run's: the retention of other runs' jobs is theirs to apply.
    return defaults.model_copy(update={"model": spec.model, "on_success": on_success, "job_retention": "keep"})


def _offered(flow: Flow, spec: DeploySpec, where: str) -> DeploySpec:
    """Refuse a plan the configured region does not offer: model-unit and other dedicated plans are Beijing only,
    PTU Beijing and Singapore (service-contract.md#C27; "模型部署 API 参考", 重要)."""
    if flow.settings.region != "cn" and spec.plan != "ptu":
        plan = spec.plan or "the capacity-only form"
        raise DatasetError(
            where, f"{plan} is offered in the Beijing region only (DASHSCOPE_REGION=cn)", field="deploy.plan"
        )
    return spec


def _deploy_fields(spec: DeploySpec) -> dict[str, Any]:
    fields = {key: value for key, value in asdict(spec).items() if value is not None}
    if spec.ptu_capacity:
        fields["ptu_capacity"] = dict(spec.ptu_capacity)
    return fields


def request_run_id(deploy: Any) -> str:
    """The same request body, sent twice, names the same run."""
    canonical = json.dumps(deploy, sort_keys=True, separators=(",", ":"), default=str)
    return run_id_for("bailian-deploy", canonical, "")


async def _open(
    flow: Flow, run_id: str, source: Source, spec: DeploySpec | None, error: RunError | None
) -> tuple[DeployState, bool]:
    existing = await load(flow, run_id)
    if existing is not None:
        assert isinstance(existing.state, DeployState)
        return existing.state, False
    from bailian_flow.estimate import deployment_estimate

    settings = RunSettings.from_defaults(flow.settings.defaults) if spec is None else _settings(flow, spec)
    state = DeployState(
        run_id=run_id,
        stage="failed" if error else "requested",
        source=source,
        settings=settings,
        created_at=iso_z(),
        error=error,
        deploy=_deploy_fields(spec) if spec else {},
        # The rate its plan bills per 1K tokens served, where the seed's price reference gives one.
        estimate=deployment_estimate(spec.model, spec.plan or "") if spec else None,
    )
    if error is not None:
        changed = f"failed: {error.reason}"
    else:
        assert spec is not None
        changed = f"deploy requested: {spec.model} on plan {spec.plan or '(capacity only)'}"
    written = await create(flow, state, changed)
    if written is None:
        again = await load(flow, run_id)
        assert again is not None and isinstance(again.state, DeployState)
        return again.state, False
    assert isinstance(written, DeployState)
    return written, True


async def open_from_event(
    flow: Flow, bucket: str, key: str, etag: str | None, *, kind: str = "deploy", first_stage: str = ""
) -> tuple[DeployState | None, bool]:
    """The kind's opener: the marker version's run, whose first entry (`requested`) hands it to on_upload by its
    own event; None when the object is gone or was overwritten since the event (the newer one has its own)."""
    info = await flow.store.head(key)
    if info is None or (etag and bare_etag(info.etag).upper() != bare_etag(etag).upper()):
        return None, False
    version = bare_etag(info.etag).upper()
    run_id = run_id_for(bucket, key, version)
    source = Source(bucket=bucket, key=key, etag=version, size=info.size)
    existing = await load(flow, run_id)
    if existing is not None:
        assert isinstance(existing.state, DeployState)
        return existing.state, False
    spec: DeploySpec | None = None
    error: RunError | None = None
    if info.size > MAX_MARKER_BYTES:
        reason = f"a deploy marker holds at most {MAX_MARKER_BYTES:,} bytes; {key} has {info.size:,}"
        error = RunError(reason=reason, object=key, code="InvalidSettings")
    else:
        try:
            body = await flow.store.get(key) or b""
            spec = _offered(flow, parse_deploy_marker(body, object_name=key), key)
        except DatasetError as exc:
            error = RunError(reason=exc.reason, object=key, field=exc.field, code="InvalidSettings")
    return await _open(flow, run_id, source, spec, error)


async def start_request(flow: Flow, body: dict[str, Any]) -> tuple[DeployState, bool]:
    """A deploy run from a REST body; the body's own mistakes are the caller's to fix now (SettingsError: a 400)."""
    unknown = sorted(set(body) - {"deploy"})
    if unknown:
        raise SettingsError(
            f"a deploy request takes only 'deploy', not {unknown[0]!r}", object_key=None, field=unknown[0]
        )
    try:
        spec = _offered(flow, parse_deploy_marker({"deploy": body["deploy"]}, object_name="request"), "request")
    except DatasetError as exc:
        raise SettingsError(f"{exc.field or 'deploy'}: {exc.reason}", object_key=None, field=exc.field) from None
    return await _open(flow, request_run_id(body["deploy"]), Source(bucket=flow.settings.bucket), spec, None)


async def settings_for(
    flow: Flow, key: str, metadata: Mapping[str, str], explicit: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A retried deploy run keeps its spec: the marker version is the run, and a changed marker is a new run."""
    if explicit:
        reason = "a deploy run is retried as it was; upload a new marker to change it"
        raise SettingsError(reason, object_key=key, field="settings")
    return {}
