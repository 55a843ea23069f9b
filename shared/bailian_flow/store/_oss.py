"""The OSS backend: signed requests over aiohttp (`_oss_http`, `_oss_auth`), no vendor SDK.

`alibabacloud_oss_v2` costs a cold start ~180 ms (its models pull in requests, urllib3, pycryptodome...);
aiohttp is already loaded for the Bailian client. Even aiohttp is imported on the first request, not at
import time: a handler that never touches OSS does not pay for it.

Credentials, first that applies: explicit `credentials`; else the FC python3.10 context's `credentials`; else
`ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN`, read at every request because FC refreshes the STS token
in the environment of a live instance; else, for a loopback endpoint only (the emulator does not check
signatures), anonymous requests.

Addressing: path-style (`/{bucket}/{key}`) for an IP or localhost endpoint, virtual-hosted otherwise; the
internal endpoint when the function runs in the bucket's region (FC_REGION); https unless the endpoint says http.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import hashlib
import ipaddress
import os
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from urllib.parse import unquote, urlsplit

from bailian_flow.store._base import (
    DEFAULT_CHUNK_SIZE,
    ObjectChangedError,
    ObjectInfo,
    ObjectNotFoundError,
    StoreError,
    bare_etag,
    check_range,
)
from bailian_flow.store._oss_auth import OssCredentials
from bailian_flow.store._oss_http import MAX_XML_BYTES, OssHttp, OssServiceError, Retry, parse_xml

__all__ = ["DEFAULT_REGION", "PART_SIZE", "OssCredentials", "OssStore"]

DEFAULT_REGION = "cn-hangzhou"
# put_stream holds one part at a time; OSS wants at least 100 KB per part but the last.
PART_SIZE = 8 * 1024 * 1024
META_PREFIX = "x-oss-meta-"


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


def _base_url(endpoint: str | None, region: str) -> str:
    if endpoint:
        return endpoint if "://" in endpoint else f"https://{endpoint}"
    # Same region as the function: the internal endpoint is free and faster.
    internal = "-internal" if os.environ.get("FC_REGION") == region else ""
    return f"https://oss-{region}{internal}.aliyuncs.com"


def _md5(data: bytes | tuple[bytes, ...]) -> tuple[str, str]:
    """(hex, base64) MD5 of `data` (or of its pieces one after the other): OSS checks the body against Content-MD5
    and makes the hex its ETag."""
    digest = hashlib.md5()
    for piece in data if isinstance(data, tuple) else (data,):
        digest.update(piece)
    return digest.hexdigest().upper(), base64.b64encode(digest.digest()).decode()


def _xml_escape(text: str) -> str:
    # Not xml.sax.saxutils: it imports urllib.request and ssl, ~8 ms of a cold start for three replacements.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _http_time(value: str | None) -> dt.datetime:
    if value:
        with contextlib.suppress(TypeError, ValueError):
            return email.utils.parsedate_to_datetime(value)
    return dt.datetime.now(dt.timezone.utc)


def _iso_time(value: str | None) -> dt.datetime:
    if value:
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.datetime.now(dt.timezone.utc)


class OssStore:
    def __init__(
        self,
        bucket: str,
        endpoint: str | None = None,
        region: str | None = None,
        credentials: OssCredentials | None = None,
        *,
        context: object = None,
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
        self._list_page_size = list_page_size
        self._http = OssHttp(
            bucket,
            _base_url(endpoint, self.region),
            path_style=local if path_style is None else path_style,
            region=self.region,
            credentials=self._current_credentials,
        )

    def __repr__(self) -> str:
        return f"OssStore(bucket={self.bucket!r}, region={self.region!r}, endpoint={self.endpoint!r})"

    def _current_credentials(self) -> OssCredentials | None:
        if self._credentials is not None:
            return self._credentials
        found = OssCredentials.from_env()
        if found is None and not self._loopback:
            raise StoreError(f"OSS {self.bucket}: no credentials (set ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET)")
        return found

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
        body = bytes(data)
        md5_hex, md5_b64 = _md5(body)
        headers = {"Content-Type": content_type or "application/octet-stream", "Content-MD5": md5_b64}
        if forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        for name, value in (metadata or {}).items():
            headers[META_PREFIX + name.lower()] = value
        try:
            await self._http.send("PUT", key, action="put", headers=headers, body=body)
        except OssServiceError as exc:
            if not (forbid_overwrite and exc.status == 409 and exc.code == "FileAlreadyExists"):
                raise
            # A create-only PUT is retried like a read, so a retry can meet the object its own lost first
            # attempt wrote. Answering False then would tell the caller it lost a race it won. The object
            # holds exactly our bytes (same MD5) → ours, or a rival's identical bytes, which no caller can
            # tell apart: run-log entries carry a nonce, and the markers' callers ignore who wrote them.
            # Any other content is a genuine rival's: False, and the caller re-reads (runlog.append
            # compares the nonce besides, so even a bug here could not turn a lost race into a win).
            if exc.retried:
                existing = await self.head(key)
                if existing is not None and existing.etag.upper() == md5_hex:
                    return True
            return False
        return True

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None) -> None:
        """A multipart upload, one part in memory at a time; a small object goes up in one PUT."""
        # The part's chunks as they came, sent as they are: a growing bytearray was copied at each of its
        # reallocations, then once more into bytes, which put three part-sized buffers in memory at once.
        part: list[bytes] = []
        held = 0
        upload_id: str | None = None
        parts: list[tuple[int, str]] = []

        async def send(upload_id: str) -> None:
            number = len(parts) + 1
            body = tuple(part)
            part.clear()
            answer = await self._http.send(
                "PUT",
                key,
                action="upload part",
                params={"partNumber": str(number), "uploadId": upload_id},
                headers={"Content-MD5": _md5(body)[1]},
                body=body,
            )
            parts.append((number, answer.headers.get("ETag", "")))

        try:
            async for chunk in chunks:
                part.append(bytes(chunk))
                held += len(chunk)
                if held < PART_SIZE:
                    continue
                if upload_id is None:
                    upload_id = await self._initiate(key, content_type)
                await send(upload_id)
                held = 0
            if upload_id is None:
                await self.put(key, b"".join(part), content_type=content_type)
                return
            if part:
                await send(upload_id)
            listed = "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{_xml_escape(etag)}</ETag></Part>" for n, etag in parts
            )
            # Not retried once it may have been processed: a repeat of a completed upload is a 404.
            await self._http.send(
                "POST",
                key,
                action="complete multipart put",
                params={"uploadId": upload_id},
                headers={"Content-Type": "application/xml"},
                body=f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode(),
                retry=Retry.UNPROCESSED,
            )
        except BaseException:
            if upload_id is not None:
                # Should the abort fail too, the bucket's lifecycle rule removes the unfinished upload.
                with contextlib.suppress(StoreError):
                    await self._http.send("DELETE", key, action="abort multipart put", params={"uploadId": upload_id})
            raise

    async def _initiate(self, key: str, content_type: str | None) -> str:
        # Retried freely: an upload started twice leaves an empty one behind for the lifecycle rule.
        headers = {"Content-Type": content_type} if content_type else {}
        answer = await self._http.send(
            "POST", key, action="start multipart put", params={"uploads": ""}, headers=headers, max_body=MAX_XML_BYTES
        )
        upload_id = parse_xml(answer.body, "InitiateMultipartUpload").findtext("UploadId")
        if not upload_id:
            raise StoreError(f"OSS start multipart put {self.bucket}/{key}: no UploadId in the answer")
        return upload_id

    async def delete(self, key: str) -> None:
        try:
            await self._http.send("DELETE", key, action="delete")
        except OssServiceError as exc:
            if exc.status != 404:
                raise

    # -- reads ----------

    async def get(self, key: str) -> bytes | None:
        try:
            answer = await self._http.send("GET", key, action="get")
        except OssServiceError as exc:
            if exc.status == 404:
                return None
            raise
        return answer.body

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = await self._http.send("HEAD", key, action="head")
        except OssServiceError as exc:
            if exc.status == 404:
                return None
            raise
        headers = answer.headers
        return ObjectInfo(
            key=key,
            size=int(headers.get("Content-Length") or 0),
            etag=bare_etag(headers.get("ETag")),
            last_modified=_http_time(headers.get("Last-Modified")),
            metadata={
                name.lower()[len(META_PREFIX) :]: value
                for name, value in headers.items()
                if name.lower().startswith(META_PREFIX)
            },
            content_type=headers.get("Content-Type"),
        )

    async def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """One ranged GET per chunk, each pinned with If-Match to `if_match` (or to the ETag HEAD saw first).

        Each request holds at most `chunk_size` bytes, is idempotent (so it may be retried safely), and an
        overwrite mid-read fails loudly (412) instead of splicing two versions together.
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
        offset = 0
        while offset < info.size:
            end = min(offset + chunk_size, info.size) - 1
            headers = {
                "Range": f"bytes={offset}-{end}",
                "x-oss-range-behavior": "standard",
                "If-Match": f'"{info.etag}"',
            }
            try:
                answer = await self._http.send("GET", key, action="get", headers=headers, max_body=chunk_size)
            except OssServiceError as exc:
                if exc.status == 412:
                    raise ObjectChangedError(
                        f"{self.bucket}/{key} changed while being read", status=412, code="PreconditionFailed"
                    ) from exc
                if exc.status == 404:
                    raise ObjectNotFoundError(
                        f"{self.bucket}/{key} vanished while being read", status=404, code="NoSuchKey"
                    ) from exc
                raise
            chunk = answer.body
            if len(chunk) != end - offset + 1:
                # A server that ignored the Range header would otherwise hand us the whole object per chunk.
                raise StoreError(f"OSS get {self.bucket}/{key}: range {offset}-{end} got {len(chunk)} bytes")
            offset += len(chunk)
            yield chunk

    async def read_range(self, key: str, offset: int, length: int, *, if_match: str | None = None) -> bytes:
        """One GET with `Range` (standard behaviour: a range past the end is 416, which answers b"") and, when
        pinned, `If-Match` (412: ObjectChangedError)."""
        check_range(offset, length)
        headers = {"Range": f"bytes={offset}-{offset + length - 1}", "x-oss-range-behavior": "standard"}
        if if_match is not None:
            headers["If-Match"] = f'"{bare_etag(if_match).upper()}"'
        try:
            answer = await self._http.send("GET", key, action="get", headers=headers, max_body=length)
        except OssServiceError as exc:
            if exc.status == 412:
                raise ObjectChangedError(
                    f"{self.bucket}/{key} is not the version asked for", status=412, code="PreconditionFailed"
                ) from exc
            if exc.status == 404:
                raise ObjectNotFoundError(f"no such object: {self.bucket}/{key}", status=404, code="NoSuchKey") from exc
            if exc.status == 416:
                return b""
            raise
        if len(answer.body) > length:
            # A server that ignored the Range header would otherwise hand us the whole object.
            raise StoreError(f"OSS get {self.bucket}/{key}: range of {length} bytes got {len(answer.body)}")
        return bytes(answer.body)

    async def list(self, prefix: str, *, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2 pages; keys come URL-encoded (`encoding-type=url`): a key may hold any character,
        even ones XML cannot carry."""
        params = {"list-type": "2", "max-keys": str(self._list_page_size), "encoding-type": "url"}
        if prefix:
            params["prefix"] = prefix
        if start_after:
            params["start-after"] = start_after
        while True:
            answer = await self._http.send("GET", None, action="list", params=params, max_body=MAX_XML_BYTES)
            root = parse_xml(answer.body, "ListObjectsV2")
            decode = unquote if root.findtext("EncodingType") == "url" else str
            for item in root.iterfind("Contents"):
                yield ObjectInfo(
                    key=decode(item.findtext("Key") or ""),
                    size=int(item.findtext("Size") or 0),
                    etag=bare_etag(item.findtext("ETag")),
                    last_modified=_iso_time(item.findtext("LastModified")),
                )
            token = root.findtext("NextContinuationToken")
            if root.findtext("IsTruncated") != "true" or not token:
                return
            params["continuation-token"] = decode(token)

    async def close(self) -> None:
        await self._http.close()
