"""Per-upload run settings: the functions' defaults, overridden by OSS user metadata, overridden by a sidecar.

A user chooses, per dataset and without redeploying:
- a sidecar YAML object next to the dataset, `<dataset key>.flow.yaml` (upload it before the dataset), or
- OSS user metadata on the dataset object: `x-oss-meta-flow-model`, `-flow-training-type`, `-flow-on-success`,
  `-flow-plan`, `-flow-capacity`, `-flow-deploy-spec`, `-flow-validation-key`, `-flow-hyper-parameters` (JSON).

Unknown keys are rejected by name, so a typo fails the run with the field it concerns instead of being ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bailian_flow.config import RunDefaults

TrainingType = Literal["sft", "efficient_sft", "cpt", "dpo_full", "dpo_lora"]


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

    model_name: str | None = None
    bucket: str | None = None
    object_key: str
    weight_type: Literal["full", "lora"] = "lora"
    display_name: str | None = None

    @field_validator("object_key")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value.endswith("/"):
            raise ValueError("must end with '/' (a folder of weights)")
        return value


class OnSuccess(BaseModel):
    action: Literal["deploy", "import", "none"] = "deploy"
    plan: Literal["mu", "cu", "ptu", "lora"] = "lora"
    capacity: int = Field(default=1, ge=1, lt=1000)
    deploy_spec: str | None = None
    deploy_after_import: bool = True
    import_: ImportSpec | None = Field(default=None, alias="import")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _import_needs_weights(self) -> OnSuccess:
        if self.action == "import" and self.import_ is None:
            raise ValueError("action 'import' needs an 'import' section naming the weights' object_key")
        return self


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "qwen3-8b"
    training_type: TrainingType = "efficient_sft"
    hyper_parameters: dict[str, Any] = Field(default_factory=dict)
    validation_key: str | None = None
    on_success: OnSuccess = Field(default_factory=OnSuccess)

    @classmethod
    def from_defaults(cls, defaults: RunDefaults) -> RunSettings:
        return cls.model_validate(
            {
                "model": defaults.model,
                "training_type": defaults.training_type,
                "hyper_parameters": dict(defaults.hyper_parameters),
                "on_success": {
                    "action": defaults.on_success,
                    "plan": defaults.deploy_plan,
                    "capacity": defaults.deploy_capacity,
                    "deploy_spec": defaults.deploy_spec,
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
}


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def metadata_overrides(metadata: Mapping[str, str], *, object_key: str) -> dict[str, Any]:
    """Turn `x-oss-meta-flow-*` user metadata (names without the `x-oss-meta-` prefix) into settings."""
    overrides: dict[str, Any] = {}
    for raw_name, value in metadata.items():
        name = raw_name.lower().removeprefix("x-oss-meta-")
        if not name.startswith("flow-"):
            continue
        if name == "flow-hyper-parameters":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SettingsError(
                    f"metadata {raw_name} is not JSON: {exc.msg}",
                    object_key=object_key,
                    field="hyper_parameters",
                ) from None
            overrides["hyper_parameters"] = parsed
            continue
        path = _METADATA_FIELDS.get(name)
        if path is None:
            raise SettingsError(f"unknown metadata setting {raw_name}", object_key=object_key, field=name)
        target = overrides
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return overrides


def parse_sidecar(data: bytes, *, object_key: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(data.decode("utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"settings file is not valid YAML: {exc}", object_key=object_key) from None
    if not isinstance(loaded, dict):
        raise SettingsError("settings file must hold a mapping", object_key=object_key)
    return loaded


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
        merged = _deep_merge(merged, layer)
        blame = where or blame
    try:
        return RunSettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"setting {field}: {first['msg']}", object_key=blame, field=field) from None
