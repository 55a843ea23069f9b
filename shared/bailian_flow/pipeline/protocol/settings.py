"""Per-upload run settings: the functions' defaults, overridden by OSS user metadata, overridden by a sidecar.

A user chooses, per dataset and without redeploying:
- a sidecar YAML object next to the dataset, `<dataset key>.flow.yaml` (upload it before the dataset), or
- OSS user metadata on the dataset object: `x-oss-meta-flow-model`, `-flow-training-type`, `-flow-on-success`,
  `-flow-plan`, `-flow-capacity`, `-flow-deploy-spec`, `-flow-validation-key`, `-flow-hyper-parameters` (JSON).

Unknown keys are rejected by name, so a typo fails the run with the field it concerns instead of being ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from bailian_flow.config import RunDefaults
from bailian_flow.pipeline.protocol.inputs import (
    MAX_HYPER_PARAMETERS_BYTES,
    MAX_KEY_BYTES,
    MAX_NAME_CHARS,
    MAX_SIDECAR_BYTES,
    bounded_json,
)

TrainingType = Literal["sft", "efficient_sft", "cpt", "dpo_full", "dpo_lora"]
# Bounds (inputs.py sets them): every setting is copied into each entry of its run's log.
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_BYTES)]


class SettingsError(ValueError):
    """A per-upload setting is invalid; `field` names it."""

    def __init__(self, reason: str, *, object_key: str | None, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.object_key = object_key
        self.field = field


class ImportSpec(BaseModel):
    """Custom weights to import from OSS after training, instead of deploying the job's own output."""

    model_config = ConfigDict(extra="forbid")

    model_name: Name | None = None
    bucket: Annotated[str, Field(min_length=3, max_length=63)] | None = None
    object_key: Key
    weight_type: Literal["full", "lora"] = "lora"
    display_name: Name | None = None

    @field_validator("object_key")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value.endswith("/"):
            raise ValueError("must end with '/' (a folder of weights)")
        return value


class PtuCapacity(BaseModel):
    """Provisioned throughput of a `ptu` deployment, in tokens per minute."""

    model_config = ConfigDict(extra="forbid")

    input_tpm: int = Field(gt=0)
    output_tpm: int = Field(gt=0)


_RETENTION = re.compile(r"^(delete-after-deploy|keep|keep-last-(?P<n>\d{1,3}))$")
_DURATION = re.compile(r"^(?P<n>\d{1,7})\s*(?P<unit>[smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# A deployment that lives longer than a year is not what a TTL is for; beyond it a typo is likelier.
MAX_TTL_SECONDS = 366 * 86400


def retention_keep_last(value: str) -> int | None:
    """N of `keep-last-N`; None for the other policies."""
    match = _RETENTION.match(value)
    return int(match["n"]) if match and match["n"] is not None else None


def _check_retention(value: str) -> str:
    if not _RETENTION.match(value):
        raise ValueError("must be delete-after-deploy, keep-last-N (N a number) or keep")
    return value


def parse_duration(value: Any) -> int | None:
    """Seconds from a number of seconds or a string such as `90m`, `24h`, `7d`; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 3600, 90m, 24h or 7d")
    match = _DURATION.match(str(value).strip().lower())
    if match is None:
        raise ValueError("must be a duration such as 3600, 90m, 24h or 7d")
    seconds = int(match["n"]) * _UNIT_SECONDS[match["unit"]]
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"must be between 1 second and {MAX_TTL_SECONDS // 86400} days")
    return seconds


class OnSuccess(BaseModel):
    action: Literal["deploy", "import", "none"] = "deploy"
    plan: Literal["mu", "cu", "ptu", "lora"] = "lora"
    capacity: int = Field(default=1, ge=1, lt=1000)
    # Validated even when left out, so that a plan missing its companion setting is blamed on that setting.
    deploy_spec: Name | None = Field(default=None, validate_default=True)
    ptu_capacity: PtuCapacity | None = Field(default=None, validate_default=True)
    # Applied with an update once the deployment runs (the create call's own limits are not in every plan).
    rpm_limit: int | None = Field(default=None, gt=0)
    tpm_limit: int | None = Field(default=None, gt=0)
    # `last` deploys the job's final model; a checkpoint name (`checkpoint-20`) is exported first, then deployed.
    checkpoint: str = Field(default="last", pattern=r"^(last|checkpoint-\d{1,9})$")
    # Undeploy this long after the deployment runs (seconds, or `90m`, `24h`, `7d`); None keeps it.
    deployment_ttl: int | None = None
    deploy_after_import: bool = True
    import_: ImportSpec | None = Field(default=None, alias="import")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("deployment_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> int | None:
        return parse_duration(value)

    @field_validator("deploy_spec")
    @classmethod
    def _spec_for_mu(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("plan") == "mu" and not value:
            raise ValueError("plan 'mu' needs deploy_spec (for example MU1)")
        return value

    @field_validator("ptu_capacity")
    @classmethod
    def _capacity_for_ptu(cls, value: PtuCapacity | None, info: ValidationInfo) -> PtuCapacity | None:
        if info.data.get("plan") == "ptu" and value is None:
            raise ValueError("plan 'ptu' needs ptu_capacity with input_tpm and output_tpm")
        return value

    @model_validator(mode="after")
    def _import_needs_weights(self) -> OnSuccess:
        if self.action == "import" and self.import_ is None:
            raise ValueError("action 'import' needs an 'import' section naming the weights' object_key")
        return self


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Name = "qwen3-8b"
    training_type: TrainingType = "efficient_sft"
    hyper_parameters: dict[str, Any] = Field(default_factory=dict)
    validation_key: Key | None = None
    on_success: OnSuccess = Field(default_factory=OnSuccess)
    # What becomes of the run's succeeded fine-tune job (it counts against the account's 20-job quota).
    job_retention: str = "keep-last-10"

    @field_validator("job_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        return _check_retention(value)

    @field_validator("hyper_parameters")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dict(bounded_json(value, max_bytes=MAX_HYPER_PARAMETERS_BYTES, what="hyper_parameters"))

    @classmethod
    def from_defaults(cls, defaults: RunDefaults) -> RunSettings:
        return cls.model_validate(
            {
                "model": defaults.model,
                "training_type": defaults.training_type,
                "hyper_parameters": dict(defaults.hyper_parameters),
                "job_retention": defaults.job_retention,
                "on_success": {
                    "action": defaults.on_success,
                    "plan": defaults.deploy_plan,
                    "capacity": defaults.deploy_capacity,
                    "deploy_spec": defaults.deploy_spec,
                    "deployment_ttl": defaults.deployment_ttl,
                },
            }
        )


_METADATA_FIELDS = {
    "flow-model": ("model",),
    "flow-training-type": ("training_type",),
    "flow-validation-key": ("validation_key",),
    "flow-on-success": ("on_success", "action"),
    "flow-plan": ("on_success", "plan"),
    "flow-capacity": ("on_success", "capacity"),
    "flow-deploy-spec": ("on_success", "deploy_spec"),
    "flow-rpm-limit": ("on_success", "rpm_limit"),
    "flow-tpm-limit": ("on_success", "tpm_limit"),
    "flow-checkpoint": ("on_success", "checkpoint"),
    "flow-deployment-ttl": ("on_success", "deployment_ttl"),
    "flow-job-retention": ("job_retention",),
}
# Metadata values that are JSON documents, and where they go.
_METADATA_JSON_FIELDS = {
    "flow-hyper-parameters": ("hyper_parameters",),
    "flow-ptu-capacity": ("on_success", "ptu_capacity"),
}


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def metadata_overrides(
    metadata: Mapping[str, str],
    *,
    object_key: str,
    fields: Mapping[str, tuple[str, ...]] = _METADATA_FIELDS,
    json_fields: Mapping[str, tuple[str, ...]] = _METADATA_JSON_FIELDS,
) -> dict[str, Any]:
    """Turn `x-oss-meta-flow-*` user metadata (names without the `x-oss-meta-` prefix) into settings.

    `fields` maps a metadata name to where its text goes, `json_fields` one whose value is a JSON document.
    """
    overrides: dict[str, Any] = {}
    for raw_name, value in metadata.items():
        name = raw_name.lower().removeprefix("x-oss-meta-")
        if not name.startswith("flow-"):
            continue
        parsed: Any = value
        path = json_fields.get(name)
        if path is not None:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SettingsError(
                    f"metadata {raw_name} is not JSON: {exc.msg}",
                    object_key=object_key,
                    field=".".join(path),
                ) from None
        else:
            path = fields.get(name)
        if path is None:
            raise SettingsError(f"unknown metadata setting {raw_name}", object_key=object_key, field=name)
        target = overrides
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = parsed
    return overrides


def parse_sidecar(data: bytes, *, object_key: str) -> dict[str, Any]:
    # yaml only here: most uploads have no sidecar, and its import is ~9 ms of a cold start.
    import yaml

    class PlainLoader(yaml.SafeLoader):
        """YAML without aliases: a few bytes of `&a`/`*a` can stand for gigabytes once the settings are serialized."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("aliases (*name) are not allowed")
            return super().compose_node(parent, index)

    if len(data) > MAX_SIDECAR_BYTES:
        raise SettingsError(f"settings file is larger than {MAX_SIDECAR_BYTES} bytes", object_key=object_key)
    try:
        loaded = yaml.load(data.decode("utf-8"), Loader=PlainLoader) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"settings file is not valid YAML: {exc}", object_key=object_key) from None
    except RecursionError:
        raise SettingsError("settings file nests too deeply", object_key=object_key) from None
    if not isinstance(loaded, dict):
        raise SettingsError("settings file must hold a mapping", object_key=object_key)
    return loaded


def with_overrides(settings: RunSettings, explicit: Mapping[str, Any]) -> RunSettings:
    """`settings` with a request's settings laid over them (raises SettingsError like `resolve_settings`)."""
    try:
        merged = _own_model_plan(deep_merge(settings.model_dump(by_alias=True), explicit), None)
        return RunSettings.model_validate(merged)
    except ValidationError as exc:
        raise _settings_error(exc, None) from None


def _own_model_plan(merged: dict[str, Any], blame: str | None) -> dict[str, Any]:
    """What a run deploys is its own model (fine-tuned or imported): PTU serves Bailian's own base models only
    (service-contract.md#C22), so a plan of ptu is refused when the run opens, before training is paid for. A base
    model is deployed by its own run kind, whose settings are not read from a user's layers."""
    on_success = merged.get("on_success")
    if isinstance(on_success, Mapping) and on_success.get("plan") == "ptu":
        raise SettingsError(
            "setting on_success.plan: plan 'ptu' serves Bailian's own base models only, not fine-tuned or imported "
            "ones: use lora, mu or cu, and a deployments/*.deploy.yaml marker to deploy a base model on PTU",
            object_key=blame,
            field="on_success.plan",
        )
    return merged


def _settings_error(exc: ValidationError, blame: str | None) -> SettingsError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return SettingsError(f"setting {field}: {first['msg']}", object_key=blame, field=field)


def resolve_settings(
    defaults: RunDefaults,
    *,
    metadata: Mapping[str, str] | None = None,
    sidecar: Mapping[str, Any] | None = None,
    explicit: Mapping[str, Any] | None = None,
    object_key: str | None = None,
    sidecar_key: str | None = None,
) -> RunSettings:
    """Merge defaults < metadata < sidecar < explicit (REST API) and validate, naming the bad field."""
    merged = RunSettings.from_defaults(defaults).model_dump(by_alias=True)
    layers: list[tuple[Mapping[str, Any], str | None]] = []
    if metadata:
        layers.append((metadata_overrides(metadata, object_key=object_key or ""), object_key))
    if sidecar:
        layers.append((sidecar, sidecar_key))
    if explicit:
        layers.append((explicit, None))
    blame: str | None = object_key
    for layer, where in layers:
        merged = deep_merge(merged, layer)
        blame = where or blame
    try:
        return RunSettings.model_validate(_own_model_plan(merged, blame))
    except ValidationError as exc:
        raise _settings_error(exc, blame) from None
