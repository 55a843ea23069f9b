"""Files: native `/files` and OpenAI-compatible `/compatible-mode/v1/files`."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from ._common import ApiModel, OpenStatus

__all__ = [
    "CompatFile",
    "CompatFileList",
    "CompatFileStatus",
    "FailedUpload",
    "FileDeleted",
    "FileInfo",
    "FilePage",
    "FilePurpose",
    "UploadResult",
    "UploadedFile",
]


class FilePurpose:
    FINE_TUNE: Final = "fine-tune"
    FILE_EXTRACT: Final = "file-extract"
    BATCH: Final = "batch"
    BATCH_OUTPUT: Final = "batch_output"


class UploadedFile(ApiModel):
    file_id: str
    name: str | None = None


class FailedUpload(ApiModel):
    name: str | None = None
    code: str | None = None
    message: str | None = None


class UploadResult(ApiModel):
    uploaded_files: list[UploadedFile] = Field(default_factory=list)
    failed_uploads: list[FailedUpload] = Field(default_factory=list)


class FileInfo(ApiModel):
    file_id: str
    name: str | None = None
    description: str | None = None
    size: int | None = None
    md5: str | None = None
    gmt_create: str | None = None
    url: str | None = None
    region: str | None = None
    purpose: str | None = None


class FilePage(ApiModel):
    page_no: int = 1
    page_size: int = 10
    total: int = 0
    files: list[FileInfo] = Field(default_factory=list)


class CompatFileStatus(OpenStatus):
    PROCESSING: Final = "processing"
    PROCESSED: Final = "processed"
    ERROR: Final = "error"
    TERMINAL = frozenset({PROCESSED, ERROR})


class CompatFile(ApiModel):
    id: str
    object: str = "file"
    bytes: int | None = None
    created_at: int | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    status_details: str | None = None


class CompatFileList(ApiModel):
    object: str = "list"
    data: list[CompatFile] = Field(default_factory=list)
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(ApiModel):
    id: str
    object: str | None = None
    deleted: bool
