"""`client.deployments`: model deployments (native)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_pages
from ..models.deployments import (
    DeployableModel,
    DeployableModelPage,
    Deployment,
    DeploymentCreate,
    DeploymentPage,
    PtuCapacity,
)
from ._resource import Resource, native_payload, quote

__all__ = ["Deployments"]


def _op(name: str, method: str, idempotent: bool, **kw: Any) -> Operation:
    return Operation(f"deployments.{name}", method, Family.NATIVE, Limiter.DEPLOYMENTS, idempotent, **kw)


_MODELS = _op("models", "GET", True)
# A second create would deploy (and bill) a second instance, or fail with 409: never repeated blindly.
_CREATE = _op("create", "POST", False)
_GET = _op("get", "GET", True)
_LIST = _op("list", "GET", True)
# Scale and limits set absolute values: sending the same PUT twice ends in the same state.
_SCALE = _op("scale", "PUT", True)
_UPDATE = _op("update", "PUT", True)
_DELETE = _op("delete", "DELETE", True, absent_means_done=True)


class Deployments(Resource):
    async def models_page(self, page_no: int = 1, page_size: int = 50) -> DeployableModelPage:
        answer = await self._client.request(
            _MODELS, "/deployments/models", params={"page_no": page_no, "page_size": page_size}
        )
        return self._client.parse(DeployableModelPage, native_payload(answer), answer)

    def models(self, page_size: int = 100) -> AsyncIterator[DeployableModel]:
        """Every model that can be deployed, with its base capacity."""

        async def fetch(page_no: int) -> tuple[list[DeployableModel], int, int]:
            page = await self.models_page(page_no, page_size)
            return page.models, page.total, page.page_size or page_size

        return iterate_pages(fetch)

    async def create(
        self,
        model_name: str,
        *,
        capacity: int | None = None,
        plan: str | None = None,
        deploy_spec: str | None = None,
        ptu_capacity: PtuCapacity | dict[str, int] | None = None,
        suffix: str | None = None,
        name: str | None = None,
        enable_thinking: bool | None = None,
        max_context_length: int | None = None,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        **extra: Any,
    ) -> Deployment:
        request = DeploymentCreate.model_validate(
            {
                "model_name": model_name,
                "capacity": capacity,
                "plan": plan,
                "deploy_spec": deploy_spec,
                "ptu_capacity": ptu_capacity,
                "suffix": suffix,
                "name": name,
                "enable_thinking": enable_thinking,
                "max_context_length": max_context_length,
                "rpm_limit": rpm_limit,
                "tpm_limit": tpm_limit,
                **extra,
            }
        )
        answer = await self._client.request(_CREATE, "/deployments", json=request.to_body())
        return self._client.parse(Deployment, native_payload(answer), answer)

    async def get(self, deployed_model: str) -> Deployment:
        answer = await self._client.request(_GET, f"/deployments/{quote(deployed_model)}")
        return self._client.parse(Deployment, native_payload(answer), answer)

    async def list_page(self, page_no: int = 1, page_size: int = 50) -> DeploymentPage:
        answer = await self._client.request(_LIST, "/deployments", params={"page_no": page_no, "page_size": page_size})
        return self._client.parse(DeploymentPage, native_payload(answer), answer)

    def list(self, page_size: int = 100) -> AsyncIterator[Deployment]:
        """Every deployment, page after page. 100 a page: the 200 maximum is documented only for
        `/deployments/models`, a reference CLI gives 100 for this list, and a silently capped page would make
        page numbers skip deployments (service-contract.md#C24)."""

        async def fetch(page_no: int) -> tuple[list[Deployment], int, int]:
            page = await self.list_page(page_no, page_size)
            return page.deployments, page.total, page.page_size or page_size

        return iterate_pages(fetch)

    async def scale(
        self,
        deployed_model: str,
        capacity: int | None = None,
        *,
        ptu_capacity: PtuCapacity | dict[str, int] | None = None,
    ) -> Deployment:
        """`capacity` for model units, `ptu_capacity` for a PTU deployment ("Scale a deployment",
        https://help.aliyun.com/zh/model-studio/scale-deployment-api, 请求参数)."""
        if (capacity is None) == (ptu_capacity is None):
            raise ValueError("give capacity or ptu_capacity")
        if ptu_capacity is not None:
            sizing = ptu_capacity.model_dump() if isinstance(ptu_capacity, PtuCapacity) else dict(ptu_capacity)
            body: dict[str, object] = {"ptu_capacity": sizing}
        else:
            body = {"capacity": capacity}
        answer = await self._client.request(_SCALE, f"/deployments/{quote(deployed_model)}/scale", json=body)
        return self._client.parse(Deployment, native_payload(answer), answer)

    async def update(
        self, deployed_model: str, rpm_limit: int | None = None, tpm_limit: int | None = None
    ) -> Deployment:
        body = {k: v for k, v in {"rpm_limit": rpm_limit, "tpm_limit": tpm_limit}.items() if v is not None}
        if not body:
            raise ValueError("give rpm_limit and/or tpm_limit")
        answer = await self._client.request(_UPDATE, f"/deployments/{quote(deployed_model)}/update", json=body)
        return self._client.parse(Deployment, native_payload(answer), answer)

    async def delete(self, deployed_model: str) -> Deployment | None:
        """Start deleting; the deployment comes back with status DELETING (None if an earlier try did it)."""
        answer = await self._client.request(_DELETE, f"/deployments/{quote(deployed_model)}")
        if not answer.body:
            return None
        return self._client.parse(Deployment, native_payload(answer), answer)
