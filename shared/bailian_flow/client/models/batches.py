"""Batches (OpenAI-compatible `/batches`, on the batch host in cn)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field

from ._common import ApiModel, OpenStatus, RequestModel

__all__ = ["Batch", "BatchCreate", "BatchList", "BatchRequestCounts", "BatchStatus"]


class BatchStatus(OpenStatus):
    VALIDATING: Final = "validating"
    FAILED: Final = "failed"
    IN_PROGRESS: Final = "in_progress"
    FINALIZING: Final = "finalizing"
    COMPLETED: Final = "completed"
    EXPIRED: Final = "expired"
    CANCELLING: Final = "cancelling"
    CANCELLED: Final = "cancelled"
    TERMINAL = frozenset({FAILED, COMPLETED, EXPIRED, CANCELLED})


class BatchCreate(RequestModel):
    input_file_id: str
    endpoint: str  # /v1/chat/completions | /v1/embeddings
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None


class BatchRequestCounts(ApiModel):
    total: int = 0
    completed: int = 0
    failed: int = 0


class Batch(ApiModel):
    id: str
    object: str = "batch"
    endpoint: str | None = None
    errors: Any = None
    input_file_id: str | None = None
    completion_window: str | None = None
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int | None = None
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: BatchRequestCounts | None = None
    metadata: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        return BatchStatus.is_terminal(self.status)


class BatchList(ApiModel):
    object: str = "list"
    data: list[Batch] = Field(default_factory=list)
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
