"""Custom model import (native `/custom_models/import`, an async task)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Final

from pydantic import BeforeValidator, Field, field_validator

from ._common import ApiModel, OpenStatus, RequestModel

__all__ = ["ImportCreate", "ImportJob", "ImportPage", "ImportStatus", "StorageInfo"]


class ImportStatus(OpenStatus):
    PENDING: Final = "PENDING"
    RUNNING: Final = "RUNNING"
    SUCCEEDED: Final = "SUCCEEDED"
    FAILED: Final = "FAILED"
    # The Chinese documentation spells success SUCCESSED, the English one SUCCEEDED: one value for callers.
    ALIASES: ClassVar[dict[str, str]] = {"SUCCESSED": SUCCEEDED}
    TERMINAL = frozenset({SUCCEEDED, FAILED})


class StorageInfo(ApiModel):
    bucket_name: str
    object_key: str


class ImportCreate(RequestModel):
    model_name: str
    storage_info: StorageInfo
    display_name: str | None = Field(default=None, max_length=50)
    source: str = "oss"
    weight_type: str | None = None  # full | lora

    @field_validator("storage_info")
    @classmethod
    def _object_key_is_a_folder(cls, value: StorageInfo) -> StorageInfo:
        if not value.object_key.endswith("/"):
            raise ValueError("storage_info.object_key must end with '/'")
        return value


class ImportJob(ApiModel):
    job_id: str
    status: Annotated[str, BeforeValidator(ImportStatus.normalize)]
    model_name: str | None = None
    display_name: str | None = None
    source: str | None = None
    weight_type: str | None = None
    storage_info: StorageInfo | None = None
    gmt_create: str | None = None
    error_code: str | None = None

    @property
    def is_terminal(self) -> bool:
        return ImportStatus.is_terminal(self.status)


class ImportPage(ApiModel):
    page_no: int = 1
    page_size: int = 10
    total: int = 0
    list_: list[ImportJob] = Field(default_factory=list, alias="list")
