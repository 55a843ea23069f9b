"""Typed request and answer models, one module per API family (imported lazily by name)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batches import Batch, BatchCreate, BatchList, BatchRequestCounts, BatchStatus
    from .custom_models import ImportCreate, ImportJob, ImportPage, ImportStatus, StorageInfo
    from .deployments import (
        DeployableModel,
        DeployableModelPage,
        Deployment,
        DeploymentCreate,
        DeploymentPage,
        DeploymentStatus,
        PtuCapacity,
    )
    from .files import (
        CompatFile,
        CompatFileList,
        CompatFileStatus,
        FailedUpload,
        FileDeleted,
        FileInfo,
        FilePage,
        FilePurpose,
        UploadedFile,
        UploadResult,
    )
    from .fine_tunes import (
        Checkpoint,
        DataSource,
        FineTuneCreate,
        FineTuneEvent,
        FineTuneJob,
        FineTuneLogs,
        FineTunePage,
        FineTuneStatus,
        HyperParameters,
        MountStorage,
    )
    from .responses import InputItem, InputItemList, Response, ResponseCreate, ResponseDeleted, ResponseStatus
    from .uploads import UploadPolicy

__all__ = [
    "Batch",
    "BatchCreate",
    "BatchList",
    "BatchRequestCounts",
    "BatchStatus",
    "Checkpoint",
    "CompatFile",
    "CompatFileList",
    "CompatFileStatus",
    "DataSource",
    "DeployableModel",
    "DeployableModelPage",
    "Deployment",
    "DeploymentCreate",
    "DeploymentPage",
    "DeploymentStatus",
    "FailedUpload",
    "FileDeleted",
    "FileInfo",
    "FilePage",
    "FilePurpose",
    "FineTuneCreate",
    "FineTuneEvent",
    "FineTuneJob",
    "FineTuneLogs",
    "FineTunePage",
    "FineTuneStatus",
    "HyperParameters",
    "ImportCreate",
    "ImportJob",
    "ImportPage",
    "ImportStatus",
    "InputItem",
    "InputItemList",
    "MountStorage",
    "PtuCapacity",
    "Response",
    "ResponseCreate",
    "ResponseDeleted",
    "ResponseStatus",
    "StorageInfo",
    "UploadPolicy",
    "UploadResult",
    "UploadedFile",
]

_MODULES = {
    "batches": ["Batch", "BatchCreate", "BatchList", "BatchRequestCounts", "BatchStatus"],
    "custom_models": ["ImportCreate", "ImportJob", "ImportPage", "ImportStatus", "StorageInfo"],
    "deployments": [
        "DeployableModel",
        "DeployableModelPage",
        "Deployment",
        "DeploymentCreate",
        "DeploymentPage",
        "DeploymentStatus",
        "PtuCapacity",
    ],
    "files": [
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
    ],
    "fine_tunes": [
        "Checkpoint",
        "DataSource",
        "FineTuneCreate",
        "FineTuneEvent",
        "FineTuneJob",
        "FineTuneLogs",
        "FineTunePage",
        "FineTuneStatus",
        "HyperParameters",
        "MountStorage",
    ],
    "responses": [
        "InputItem",
        "InputItemList",
        "Response",
        "ResponseCreate",
        "ResponseDeleted",
        "ResponseStatus",
    ],
    "uploads": ["UploadPolicy"],
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
