"""Temporary upload policy (`GET /api/v1/uploads?action=getPolicy`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._common import ApiModel

__all__ = ["UploadPolicy"]


class UploadPolicy(ApiModel):
    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    oss_access_key_id: str
    expire_in_seconds: int | None = None
    max_file_size_mb: float | None = None
    capacity_limit_mb: float | None = None
    x_oss_object_acl: str | None = None
    x_oss_forbid_overwrite: str | None = None

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # The signed policy is a short-lived credential: keep it out of reprs and logs.
        for name, value in super().__repr_args__():
            yield name, ("**********" if name in {"policy", "signature"} else value)
