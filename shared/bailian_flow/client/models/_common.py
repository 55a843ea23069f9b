"""Base classes shared by every model: unknown fields are kept, statuses are open strings."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["ApiModel", "OpenStatus", "RequestModel"]


class ApiModel(BaseModel):
    """An answer from the service. Fields it adds tomorrow are kept (``model_extra``), never rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=(), defer_build=True)


class RequestModel(BaseModel):
    """A request body: validated before sending; extra keyword arguments pass through to the service."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=(), defer_build=True)

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class OpenStatus:
    """Known values of an open enum. A status stays a plain ``str``: values added later still parse."""

    TERMINAL: ClassVar[frozenset[str]] = frozenset()
    ALIASES: ClassVar[dict[str, str]] = {}

    @classmethod
    def normalize(cls, value: Any) -> Any:
        if isinstance(value, str):
            return cls.ALIASES.get(value, value)
        return value

    @classmethod
    def is_terminal(cls, status: str | None) -> bool:
        return status in cls.TERMINAL
