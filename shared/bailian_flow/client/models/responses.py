"""Stored responses (OpenAI-compatible `/responses`)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field

from ._common import ApiModel, OpenStatus, RequestModel

__all__ = ["InputItem", "InputItemList", "Response", "ResponseCreate", "ResponseDeleted", "ResponseStatus"]


class ResponseStatus(OpenStatus):
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"
    IN_PROGRESS: Final = "in_progress"
    CANCELLED: Final = "cancelled"
    QUEUED: Final = "queued"
    INCOMPLETE: Final = "incomplete"
    TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, INCOMPLETE})


class ResponseCreate(RequestModel):
    model: str
    input: str | list[dict[str, Any]]
    store: bool | None = True
    instructions: str | None = None


class Response(ApiModel):
    id: str
    object: str = "response"
    status: str | None = None
    created_at: float | None = None
    model: str | None = None
    output: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, Any] | None = None


class ResponseDeleted(ApiModel):
    id: str
    deleted: bool


class InputItem(ApiModel):
    id: str
    type: str | None = None
    role: str | None = None
    status: str | None = None
    content: list[dict[str, Any]] | str | None = None


class InputItemList(ApiModel):
    data: list[InputItem] = Field(default_factory=list)
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
    id: str | None = None
    model: str | None = None
    created_at: int | None = None  # milliseconds here, unlike Response.created_at
