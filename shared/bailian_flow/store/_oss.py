"""The OSS backend, on `alibabacloud_oss_v2.aio.AsyncClient`.

The SDK (and aiohttp under it) is imported on first use, not at import time: a handler that never touches
OSS must not pay for it at cold start.

Credentials, first that applies: explicit `credentials`; else the FC python3.10 context's `credentials`; else
`ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN`, read at every request because FC refreshes the STS token
in the environment of a live instance; else, for a loopback endpoint only (the emulator does not check
signatures), anonymous requests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bailian_flow.store._base import (
    DEFAULT_CHUNK_SIZE,
    ObjectChangedError,
    ObjectInfo,
    ObjectNotFoundError,
    StoreError,
    bare_etag,
)

DEFAULT_REGION = "cn-hangzhou"
# put_stream holds one part at a time; OSS wants at least 100 KB per part but the last.
PART_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class OssCredentials:
    """An AccessKey pair, optionally with an STS token; the secret parts never show in a repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OssCredentials | None:
        env = os.environ if environ is None else environ
        key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not key_id or not secret:
            return None
        return cls(key_id, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)

    @classmethod
    def from_context(cls, context: Any) -> OssCredentials | None:
        """The python3.10 FC context's `credentials` (python3.12 has none); snake_case or camelCase names."""
        creds = getattr(context, "credentials", None)
        if creds is None:
            return None

        def pick(*names: str) -> str | None:
            for name in names:
                value = creds.get(name) if isinstance(creds, Mapping) else getattr(creds, name, None)
                if value:
                    return _reveal(value)
            return None

        key_id = pick("access_key_id", "accessKeyId")
        secret = pick("access_key_secret", "accessKeySecret")
        if not key_id or not secret:
            return None
        return cls(key_id, secret, pick("security_token", "securityToken"))


def _reveal(value: Any) -> str:
    secret_value = getattr(value, "get_secret_value", None)
    return str(secret_value() if callable(secret_value) else value)


def _endpoint_locality(endpoint: str) -> tuple[bool, bool]:
    """(is an IP address or localhost, is loopback) for an endpoint given with or without a scheme."""
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""
    if host == "localhost":
        return True, True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False, False
    return True, address.is_loopback


class OssStore:
    def __init__(
        self,
        bucket: str,
        endpoint: str | None = None,
        region: str | None = None,
        credentials: OssCredentials | None = None,
        *,
        context: Any = None,
        path_style: bool | None = None,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket:
            raise ValueError("bucket is required")
        self.bucket = bucket
        self.region = region or os.environ.get("FC_REGION") or DEFAULT_REGION
        self.endpoint = endpoint
        self._credentials = credentials or OssCredentials.from_context(context)
        local, self._loopback = _endpoint_locality(endpoint) if endpoint else (False, False)
        # Buckets cannot be virtual hosts of an IP address: a local endpoint needs path-style URLs.
        self._path_style = local if path_style is None else path_style
        self._list_page_size = list_page_size
        self._client: Any = None
        self._oss: Any = None

    def __repr__(self) -> str:
        return f"OssStore(bucket={self.bucket!r}, region={self.region!r}, endpoint={self.endpoint!r})"

    # -- SDK plumbing ----------

    def _sdk(self) -> Any:
        if self._client is None:
            # The SDK loads its client-side encryption (pycryptodome, ~20 ms of a cold start) only if it can; we
            # never use it, so it is marked absent before the SDK's first import.
            sys.modules.setdefault("alibabacloud_oss_v2.crypto", None)  # type: ignore[arg-type]
            import alibabacloud_oss_v2 as oss
            import alibabacloud_oss_v2.aio as oss_aio

            config = oss.config.load_default()
            config.region = self.region
            config.credentials_provider = self._credentials_provider(oss)
            if self.endpoint:
                config.endpoint = self.endpoint
                config.disable_ssl = self.endpoint.startswith("http://")
            elif os.environ.get("FC_REGION") == self.region:
                # Same region as the function: the internal endpoint is free and faster.
                config.use_internal_endpoint = True
            config.use_path_style = self._path_style
            self._oss = oss
            self._client = oss_aio.AsyncClient(config)
        return self._client

    def _credentials_provider(self, oss: Any) -> Any:
        fixed = self._credentials
        if fixed is not None:
            return oss.credentials.StaticCredentialsProvider(
                fixed.access_key_id, fixed.access_key_secret, fixed.security_token
            )
        if OssCredentials.from_env() is None and self._loopback:
            return oss.credentials.AnonymousCredentialsProvider()

        def from_env() -> Any:
            found = OssCredentials.from_env()
            if found is None:
                # An empty pair makes the SDK raise its CredentialsEmptyError, which we translate.
                return oss.credentials.Credentials("", "")
            return oss.credentials.Credentials(found.access_key_id, found.access_key_secret, found.security_token)

        return oss.credentials.CredentialsProviderFunc(from_env)

    def _service_error(self, exc: Exception) -> tuple[int | None, str | None]:
        inner = exc.unwrap() if isinstance(exc, self._oss.exceptions.OperationError) else exc
        if isinstance(inner, self._oss.exceptions.ServiceError):
            return inner.status_code, inner.code
        return None, None

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        status, code = self._service_error(exc)
        if isinstance(exc, self._oss.exceptions.OperationError):
            inner = exc.unwrap()
            if isinstance(inner, self._oss.exceptions.CredentialsEmptyError):
                return StoreError(f"OSS {action} {key!r}: no credentials (set ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET)")
        detail = f"{status} {code}" if status is not None else type(exc).__name__
        return StoreError(f"OSS {action} {self.bucket}/{key} failed: {detail}", status=status, code=code)

    # -- writes ----------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        forbid_overwrite: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> bool:
        client = self._sdk()
        request = self._oss.PutObjectRequest(
            bucket=self.bucket,
            key=key,
            body=bytes(data),
            forbid_overwrite=True if forbid_overwrite else None,
            metadata=dict(metadata) if metadata else None,
            content_type=content_type,
        )
        try:
            await client.put_object(request)
        except self._oss.exceptions.OperationError as exc:
            status, code = self._service_error(exc)
            if forbid_overwrite and status == 409 and code == "FileAlreadyExists":
                return False
            raise self._fail("put", key, exc) from exc
        return True

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None) -> None:
        """A multipart upload, one part in memory at a time; a small object goes up in one PUT."""
        client = self._sdk()
        oss = self._oss
        part = bytearray()
        upload_id: str | None = None
        parts: list[Any] = []

        async def send(upload_id: str) -> None:
            number = len(parts) + 1
            request = oss.UploadPartRequest(
                bucket=self.bucket, key=key, upload_id=upload_id, part_number=number, body=bytes(part)
            )
            sent = await client.upload_part(request)
            parts.append(oss.UploadPart(part_number=number, etag=sent.etag))

        try:
            async for chunk in chunks:
                part += chunk
                if len(part) < PART_SIZE:
                    continue
                if upload_id is None:
                    started = await client.initiate_multipart_upload(
                        oss.InitiateMultipartUploadRequest(bucket=self.bucket, key=key, content_type=content_type)
                    )
                    upload_id = started.upload_id
                await send(upload_id)
                part = bytearray()
            if upload_id is None:
                await self.put(key, bytes(part), content_type=content_type)
                return
            if part:
                await send(upload_id)
            await client.complete_multipart_upload(
                oss.CompleteMultipartUploadRequest(
                    bucket=self.bucket,
                    key=key,
                    upload_id=upload_id,
                    complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts),
                )
            )
        except BaseException as exc:
            if upload_id is not None:
                # Should the abort fail too, the bucket's lifecycle rule removes the unfinished upload.
                with contextlib.suppress(oss.exceptions.OperationError):
                    await client.abort_multipart_upload(
                        oss.AbortMultipartUploadRequest(bucket=self.bucket, key=key, upload_id=upload_id)
                    )
            if isinstance(exc, oss.exceptions.OperationError):
                raise self._fail("multipart put", key, exc) from exc
            raise

    async def delete(self, key: str) -> None:
        client = self._sdk()
        try:
            await client.delete_object(self._oss.DeleteObjectRequest(bucket=self.bucket, key=key))
        except self._oss.exceptions.OperationError as exc:
            status, _ = self._service_error(exc)
            if status == 404:
                return
            raise self._fail("delete", key, exc) from exc

    # -- reads ----------

    async def get(self, key: str) -> bytes | None:
        client = self._sdk()
        try:
            result = await client.get_object(self._oss.GetObjectRequest(bucket=self.bucket, key=key))
        except self._oss.exceptions.OperationError as exc:
            status, _ = self._service_error(exc)
            if status == 404:
                return None
            raise self._fail("get", key, exc) from exc
        content: bytes = result.body.content
        return content

    async def head(self, key: str) -> ObjectInfo | None:
        client = self._sdk()
        try:
            result = await client.head_object(self._oss.HeadObjectRequest(bucket=self.bucket, key=key))
        except self._oss.exceptions.OperationError as exc:
            status, _ = self._service_error(exc)
            if status == 404:
                return None
            raise self._fail("head", key, exc) from exc
        return ObjectInfo(
            key=key,
            size=int(result.content_length or 0),
            etag=bare_etag(result.etag),
            last_modified=result.last_modified or dt.datetime.now(dt.timezone.utc),
            metadata={name.lower(): value for name, value in (result.metadata or {}).items()},
            content_type=result.content_type,
        )

    async def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """One ranged GET per chunk, each pinned with If-Match to `if_match` (or to the ETag HEAD saw first).

        Each request holds at most `chunk_size` bytes, is idempotent (so the SDK's retryer may repeat it
        safely), and an overwrite mid-read fails loudly (412) instead of splicing two versions together.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(f"no such object: {self.bucket}/{key}", status=404, code="NoSuchKey")
        if if_match is not None and bare_etag(if_match).upper() != info.etag.upper():
            raise ObjectChangedError(
                f"{self.bucket}/{key} is not the version asked for", status=412, code="PreconditionFailed"
            )
        client = self._sdk()
        offset = 0
        while offset < info.size:
            end = min(offset + chunk_size, info.size) - 1
            request = self._oss.GetObjectRequest(
                bucket=self.bucket,
                key=key,
                range_header=f"bytes={offset}-{end}",
                range_behavior="standard",
                if_match=f'"{info.etag}"',
            )
            try:
                result = await client.get_object(request)
            except self._oss.exceptions.OperationError as exc:
                status, _ = self._service_error(exc)
                if status == 412:
                    raise ObjectChangedError(
                        f"{self.bucket}/{key} changed while being read", status=412, code="PreconditionFailed"
                    ) from exc
                if status == 404:
                    raise ObjectNotFoundError(
                        f"{self.bucket}/{key} vanished while being read", status=404, code="NoSuchKey"
                    ) from exc
                raise self._fail("get", key, exc) from exc
            chunk: bytes = result.body.content
            if len(chunk) != end - offset + 1:
                # A server that ignored the Range header would otherwise hand us the whole object per chunk.
                raise StoreError(f"OSS get {self.bucket}/{key}: range {offset}-{end} got {len(chunk)} bytes")
            offset += len(chunk)
            yield chunk

    async def list(self, prefix: str, *, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        client = self._sdk()
        paginator = client.list_objects_v2_paginator(limit=self._list_page_size)
        request = self._oss.ListObjectsV2Request(bucket=self.bucket, prefix=prefix, start_after=start_after)
        try:
            async for page in paginator.iter_page(request):
                for item in page.contents or []:
                    yield ObjectInfo(
                        key=item.key,
                        size=int(item.size or 0),
                        etag=bare_etag(item.etag),
                        last_modified=item.last_modified or dt.datetime.now(dt.timezone.utc),
                    )
        except self._oss.exceptions.OperationError as exc:
            raise self._fail("list", prefix, exc) from exc

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
