"""Per-input settings of a batch inference run, chosen the way datasets choose theirs.

Layers, later wins: OSS user metadata on the input (`x-oss-meta-flow-endpoint`, `-flow-completion-window`,
`-flow-model`, `-flow-resubmit-limit`, `-flow-ds-name`, `-flow-ds-description`) < the sidecar
`<key>.flow.yaml` < the REST body's `settings`. Unknown keys are refused by name, like the fine-tune settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bailian_flow.pipeline.protocol.settings import SettingsError, deep_merge, metadata_overrides

Endpoint = Literal["/v1/chat/completions", "/v1/embeddings"]
_WINDOW = re.compile(r"^(\d{1,3})([hd])$")


class BatchMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Room is kept in Bailian's 100 characters for the run's own tag (see batch_names).
    ds_name: str | None = Field(default=None, max_length=60)
    ds_description: str | None = Field(default=None, max_length=200)


class BatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: Endpoint = "/v1/chat/completions"
    completion_window: str = "24h"
    # Replaces every line's body.model when set.
    model: str | None = Field(default=None, min_length=1, max_length=128)
    metadata: BatchMetadata = Field(default_factory=BatchMetadata)
    # How often the lines an expired, cancelled or failed shard did not finish are sent again.
    resubmit_limit: int = Field(default=2, ge=0, le=10)

    @field_validator("completion_window")
    @classmethod
    def _window(cls, value: str) -> str:
        match = _WINDOW.match(value)
        hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1) if match else 0
        if not 24 <= hours <= 336:
            raise ValueError("must be 24h to 336h (or 1d to 14d)")
        return value


_METADATA_FIELDS: dict[str, tuple[str, ...]] = {
    "flow-endpoint": ("endpoint",),
    "flow-completion-window": ("completion_window",),
    "flow-model": ("model",),
    "flow-resubmit-limit": ("resubmit_limit",),
    "flow-ds-name": ("metadata", "ds_name"),
    "flow-ds-description": ("metadata", "ds_description"),
}


def _from_metadata(metadata: Mapping[str, str], object_key: str) -> dict[str, Any]:
    return metadata_overrides(metadata, object_key=object_key, fields=_METADATA_FIELDS, json_fields={})


def resolve_batch_settings(
    *,
    metadata: Mapping[str, str] | None = None,
    sidecar: Mapping[str, Any] | None = None,
    explicit: Mapping[str, Any] | None = None,
    object_key: str | None = None,
    sidecar_key: str | None = None,
) -> BatchSettings:
    merged: dict[str, Any] = {}
    blame = object_key
    if metadata:
        merged = deep_merge(merged, _from_metadata(metadata, object_key or ""))
    for layer, where in ((sidecar, sidecar_key), (explicit, None)):
        if layer:
            merged = deep_merge(merged, layer)
            blame = where or blame
    try:
        return BatchSettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"setting {field}: {first['msg']}", object_key=blame, field=field) from None
