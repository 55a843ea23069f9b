"""`client.batches`: batch inference jobs (the compatible API of the region's main host: service-contract.md#C30)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_cursor
from ..models.batches import Batch, BatchCreate, BatchList
from ._resource import Resource, quote

__all__ = ["Batches"]


def _op(name: str, method: str, idempotent: bool) -> Operation:
    return Operation(f"batches.{name}", method, Family.COMPATIBLE, Limiter.BATCHES, idempotent)


# A repeated create runs (and bills) the batch twice: not retried once it may have been received.
_CREATE = _op("create", "POST", False)
_GET = _op("get", "GET", True)
_LIST = _op("list", "GET", True)
# Cancelling twice leaves the batch cancelling/cancelled: safe.
_CANCEL = _op("cancel", "POST", True)


class Batches(Resource):
    async def create(
        self,
        input_file_id: str,
        endpoint: str,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
        **extra: Any,
    ) -> Batch:
        request = BatchCreate.model_validate(
            {
                "input_file_id": input_file_id,
                "endpoint": endpoint,
                "completion_window": completion_window,
                "metadata": metadata,
                **extra,
            }
        )
        answer = await self._client.request(_CREATE, "/batches", json=request.to_body())
        return self._client.parse(Batch, answer.json(), answer)

    async def get(self, batch_id: str) -> Batch:
        answer = await self._client.request(_GET, f"/batches/{quote(batch_id)}")
        return self._client.parse(Batch, answer.json(), answer)

    async def list_page(self, *, after: str | None = None, limit: int = 20, **filters: str) -> BatchList:
        params: dict[str, str | int] = {"limit": limit, **filters}
        if after:
            params["after"] = after
        answer = await self._client.request(_LIST, "/batches", params=params)
        return self._client.parse(BatchList, answer.json(), answer)

    def list(self, limit: int = 100, **filters: str) -> AsyncIterator[Batch]:
        return iterate_cursor(lambda after: self.list_page(after=after, limit=limit, **filters))

    async def cancel(self, batch_id: str) -> Batch:
        answer = await self._client.request(_CANCEL, f"/batches/{quote(batch_id)}/cancel")
        return self._client.parse(Batch, answer.json(), answer)
