"""`client.batches`: batch inference jobs (the compatible API of the region's main host: service-contract.md#C31)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_cursor
from ..models.batches import Batch, BatchCreate, BatchList
from ._resource import Resource, quote

__all__ = ["MAX_INPUT_FILE_IDS", "Batches", "list_filters"]

# The list's documented filters (OpenAI兼容-Batch, 查询任务列表; service-contract.md#C34): `status` and
# `input_file_ids` are comma-separated lists (at most 20 ids), `ds_name` matches the task name fuzzily,
# `create_after` / `create_before` are `yyyyMMddHHmmss`. Lists only show the last 30 days (#C35).
MAX_INPUT_FILE_IDS = 20


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

    async def list_page(
        self,
        *,
        after: str | None = None,
        limit: int = 20,
        status: str | Sequence[str] | None = None,
        ds_name: str | None = None,
        input_file_ids: Sequence[str] | None = None,
        create_after: str | datetime | None = None,
        create_before: str | datetime | None = None,
        **extra: str,
    ) -> BatchList:
        params: dict[str, str | int] = {
            "limit": limit,
            **list_filters(
                status=status,
                ds_name=ds_name,
                input_file_ids=input_file_ids,
                create_after=create_after,
                create_before=create_before,
            ),
            **extra,
        }
        if after:
            params["after"] = after
        answer = await self._client.request(_LIST, "/batches", params=params)
        return self._client.parse(BatchList, answer.json(), answer)

    def list(
        self,
        limit: int = 100,
        *,
        status: str | Sequence[str] | None = None,
        ds_name: str | None = None,
        input_file_ids: Sequence[str] | None = None,
        create_after: str | datetime | None = None,
        create_before: str | datetime | None = None,
        **extra: str,
    ) -> AsyncIterator[Batch]:
        """Every batch of the last 30 days matching the filters (the service shows no older ones)."""
        return iterate_cursor(
            lambda after: self.list_page(
                after=after,
                limit=limit,
                status=status,
                ds_name=ds_name,
                input_file_ids=input_file_ids,
                create_after=create_after,
                create_before=create_before,
                **extra,
            )
        )

    async def cancel(self, batch_id: str) -> Batch:
        answer = await self._client.request(_CANCEL, f"/batches/{quote(batch_id)}/cancel")
        return self._client.parse(Batch, answer.json(), answer)


def list_filters(
    *,
    status: str | Sequence[str] | None = None,
    ds_name: str | None = None,
    input_file_ids: Sequence[str] | None = None,
    create_after: str | datetime | None = None,
    create_before: str | datetime | None = None,
) -> dict[str, str]:
    """The documented list filters as query parameters (lists comma-joined, times as yyyyMMddHHmmss)."""
    params: dict[str, str] = {}
    if status:
        params["status"] = status if isinstance(status, str) else ",".join(status)
    if ds_name:
        params["ds_name"] = ds_name
    if input_file_ids:
        ids = list(input_file_ids)
        if len(ids) > MAX_INPUT_FILE_IDS:
            raise ValueError(f"at most {MAX_INPUT_FILE_IDS} input_file_ids per list, got {len(ids)}")
        params["input_file_ids"] = ",".join(ids)
    for name, value in (("create_after", create_after), ("create_before", create_before)):
        if value is not None:
            params[name] = _timestamp(value)
    return params


def _timestamp(value: str | datetime) -> str:
    """`yyyyMMddHHmmss`. The page names no time zone, so an aware datetime is refused rather than guessed."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("create_after/create_before: the batch page names no time zone; pass a naive time")
        return value.strftime("%Y%m%d%H%M%S")
    if len(value) != 14 or not value.isdigit():
        raise ValueError(f"expected yyyyMMddHHmmss, got {value!r}")
    return value
