"""Async client of the Bailian (Model Studio / DashScope) model-management API.

    from bailian_flow.client import BailianClient
    async with BailianClient() as client:
        job = await client.fine_tunes.create(model="qwen3-14b", training_file_ids=[file_id])

Importing this package costs next to nothing: each name below is imported on first access (cold starts
matter in Function Compute), and each resource family's module when the client first touches it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._answers import Operation
    from ._base import BailianClient
    from ._config import Endpoints, Family, Limiter, RetryConfig, Timeouts
    from ._streams import UploadSource
    from .errors import (
        APIConnectionError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BailianError,
        ConflictError,
        FileTooLargeError,
        InternalServerError,
        NotFoundError,
        PermissionDeniedError,
        QuotaExceededError,
        RateLimitError,
        RequestTimeoutError,
        RequestTooLargeError,
        UploadFailedError,
    )
    from .models.batches import Batch, BatchStatus
    from .models.custom_models import ImportJob, ImportStatus
    from .models.deployments import DeployableModel, Deployment, DeploymentStatus
    from .models.files import CompatFile, FileInfo, FilePurpose, UploadedFile
    from .models.fine_tunes import (
        Checkpoint,
        DataSource,
        FineTuneEvent,
        FineTuneJob,
        FineTuneLogs,
        FineTuneStatus,
        HyperParameters,
    )
    from .models.responses import InputItem, Response, ResponseStatus

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BailianClient",
    "BailianError",
    "Batch",
    "BatchStatus",
    "Checkpoint",
    "CompatFile",
    "ConflictError",
    "DataSource",
    "DeployableModel",
    "Deployment",
    "DeploymentStatus",
    "Endpoints",
    "Family",
    "FileInfo",
    "FilePurpose",
    "FileTooLargeError",
    "FineTuneEvent",
    "FineTuneJob",
    "FineTuneLogs",
    "FineTuneStatus",
    "HyperParameters",
    "ImportJob",
    "ImportStatus",
    "InputItem",
    "InternalServerError",
    "Limiter",
    "NotFoundError",
    "Operation",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "Response",
    "ResponseStatus",
    "RetryConfig",
    "Timeouts",
    "UploadFailedError",
    "UploadSource",
    "UploadedFile",
]

_WHERE: dict[str, str] = {
    "BailianClient": "._base",
    "Operation": "._answers",
    "Endpoints": "._config",
    "Family": "._config",
    "Limiter": "._config",
    "RetryConfig": "._config",
    "Timeouts": "._config",
    "UploadSource": "._streams",
    **{
        name: ".models"
        for name in (
            "Batch",
            "BatchStatus",
            "Checkpoint",
            "CompatFile",
            "DataSource",
            "DeployableModel",
            "Deployment",
            "DeploymentStatus",
            "FileInfo",
            "FilePurpose",
            "FineTuneEvent",
            "FineTuneJob",
            "FineTuneLogs",
            "FineTuneStatus",
            "HyperParameters",
            "ImportJob",
            "ImportStatus",
            "InputItem",
            "Response",
            "ResponseStatus",
            "UploadedFile",
        )
    },
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module(_WHERE.get(name, ".errors"), __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
