"""`client.custom_models`: importing model weights from OSS (native, async task)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_pages
from ..models.custom_models import ImportCreate, ImportJob, ImportPage, StorageInfo
from ._resource import Resource, native_payload, quote

__all__ = ["CustomModels"]


def _op(name: str, method: str, idempotent: bool, **kw: Any) -> Operation:
    return Operation(f"custom_models.{name}", method, Family.NATIVE, Limiter.CUSTOM_MODELS, idempotent, **kw)


# A repeated create would start a second import job: not retried once it may have been received.
_CREATE = _op("create", "POST", False)
_GET = _op("get", "GET", True)
_LIST = _op("list", "GET", True)
_DELETE = _op("delete", "DELETE", True, absent_means_done=True)


class CustomModels(Resource):
    async def create(
        self,
        model_name: str,
        storage_info: StorageInfo | dict[str, str],
        *,
        display_name: str | None = None,
        weight_type: str | None = None,
        source: str = "oss",
        **extra: Any,
    ) -> ImportJob:
        """Import weights from `storage_info` (`bucket_name`, `object_key` ending in '/')."""
        request = ImportCreate.model_validate(
            {
                "model_name": model_name,
                "storage_info": storage_info,
                "display_name": display_name,
                "weight_type": weight_type,
                "source": source,
                **extra,
            }
        )
        answer = await self._client.request(_CREATE, "/custom_models/import", json=request.to_body())
        return self._client.parse(ImportJob, native_payload(answer), answer)

    async def get(self, job_id: str) -> ImportJob:
        answer = await self._client.request(_GET, f"/custom_models/import/{quote(job_id)}")
        return self._client.parse(ImportJob, native_payload(answer), answer)

    async def list_page(
        self,
        page_no: int = 1,
        page_size: int = 10,
        *,
        status: str | None = None,
        model_name: str | None = None,
    ) -> ImportPage:
        params: dict[str, str | int] = {"page_no": page_no, "page_size": page_size}
        if status:
            params["status"] = status
        if model_name:
            params["model_name"] = model_name
        answer = await self._client.request(_LIST, "/custom_models/import", params=params)
        return self._client.parse(ImportPage, native_payload(answer), answer)

    def list(
        self, *, status: str | None = None, model_name: str | None = None, page_size: int = 100
    ) -> AsyncIterator[ImportJob]:
        async def fetch(page_no: int) -> tuple[list[ImportJob], int, int]:
            page = await self.list_page(page_no, page_size, status=status, model_name=model_name)
            return page.list_, page.total, page.page_size or page_size

        return iterate_pages(fetch)

    async def delete(self, job_id: str) -> None:
        """Delete a terminal import job (otherwise `PermissionDeniedError`/`BadRequestError`
        OperationDenied)."""
        await self._client.request(_DELETE, f"/custom_models/import/{quote(job_id)}")
