"""`client.responses`: stored responses (compatible API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_cursor
from ..models.responses import InputItem, InputItemList, Response, ResponseCreate, ResponseDeleted
from ._resource import Resource, quote

__all__ = ["Responses"]


def _op(name: str, method: str, idempotent: bool, **kw: Any) -> Operation:
    return Operation(f"responses.{name}", method, Family.COMPATIBLE, Limiter.RESPONSES, idempotent, **kw)


# Generating twice bills twice and stores two responses: not retried once it may have been received.
_CREATE = _op("create", "POST", False)
_GET = _op("get", "GET", True)
_DELETE = _op("delete", "DELETE", True, absent_means_done=True)
_INPUT_ITEMS = _op("input_items", "GET", True)


class Responses(Resource):
    async def create(
        self, model: str, input: str | list[dict[str, Any]], *, store: bool = True, **extra: Any
    ) -> Response:
        request = ResponseCreate.model_validate({"model": model, "input": input, "store": store, **extra})
        answer = await self._client.request(_CREATE, "/responses", json=request.to_body())
        return self._client.parse(Response, answer.json(), answer)

    async def get(self, response_id: str) -> Response:
        answer = await self._client.request(_GET, f"/responses/{quote(response_id)}")
        return self._client.parse(Response, answer.json(), answer)

    async def delete(self, response_id: str) -> ResponseDeleted:
        answer = await self._client.request(_DELETE, f"/responses/{quote(response_id)}")
        if not answer.body:
            return ResponseDeleted(id=response_id, deleted=True)
        return self._client.parse(ResponseDeleted, answer.json(), answer)

    async def input_items_page(
        self,
        response_id: str,
        *,
        after: str | None = None,
        limit: int = 20,
        order: Literal["asc", "desc"] = "desc",
    ) -> InputItemList:
        params: dict[str, str | int] = {"limit": limit, "order": order}
        if after:
            params["after"] = after
        answer = await self._client.request(_INPUT_ITEMS, f"/responses/{quote(response_id)}/input_items", params=params)
        return self._client.parse(InputItemList, answer.json(), answer)

    def input_items(
        self, response_id: str, *, order: Literal["asc", "desc"] = "desc", limit: int = 100
    ) -> AsyncIterator[InputItem]:
        return iterate_cursor(lambda after: self.input_items_page(response_id, after=after, limit=limit, order=order))
