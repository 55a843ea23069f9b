"""`client.uploads`: temporary `oss://` URLs (getPolicy, then a form POST to the OSS host the policy
names)."""

from __future__ import annotations

from typing import Any

from .._base import Operation
from .._config import Family, Limiter
from .._streams import ProgressCallback, UploadSourceLike, open_source
from ..models.uploads import UploadPolicy
from ._resource import Resource, native_payload
from .files import multipart_form

__all__ = ["OSS_RESOURCE_RESOLVE_HEADER", "Uploads"]

# Send this header ({name: "enable"}) on any call whose body passes an oss:// URL from `upload_temporary`.
OSS_RESOURCE_RESOLVE_HEADER = "X-DashScope-OssResourceResolve"

_POLICY = Operation("uploads.get_policy", "GET", Family.NATIVE, Limiter.UPLOAD_POLICY, True)
# The policy forbids overwriting, so a second POST could only fail with 409: treated like a create.
_OSS_POST = Operation("uploads.oss_post", "POST", Family.EXTERNAL, Limiter.OSS_UPLOAD, False)


class Uploads(Resource):
    async def get_policy(self, model: str) -> UploadPolicy:
        answer = await self._client.request(_POLICY, "/uploads", params={"action": "getPolicy", "model": model})
        return self._client.parse(UploadPolicy, native_payload(answer), answer)

    async def upload_temporary(
        self,
        model: str,
        source: UploadSourceLike,
        filename: str | None = None,
        *,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> str:
        """Upload to DashScope's temporary storage for `model`; returns ``oss://<key>`` (valid 48 h)."""
        body = open_source(source, filename, size=size)
        body.progress = progress
        policy = await self.get_policy(model)
        key = f"{policy.upload_dir}/{body.filename}"
        fields: list[tuple[str, str]] = [
            ("OSSAccessKeyId", policy.oss_access_key_id),
            ("policy", policy.policy),
            ("Signature", policy.signature),
            ("key", key),
        ]
        extra: dict[str, Any] = {
            "x-oss-object-acl": policy.x_oss_object_acl,
            "x-oss-forbid-overwrite": policy.x_oss_forbid_overwrite,
        }
        fields += [(name, str(value)) for name, value in extra.items() if value is not None]
        fields.append(("success_action_status", "200"))
        # `file` must be the last field of an OSS PostObject form.
        await self._client.request(
            _OSS_POST, policy.upload_host, form=lambda: multipart_form(fields, "file", body), sources=[body]
        )
        return f"oss://{key}"
