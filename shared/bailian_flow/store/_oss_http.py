"""One signed request to OSS over aiohttp, with the retries `alibabacloud_oss_v2`'s standard retryer makes.

Retries (the SDK's rules: 3 attempts; any 5xx, 401, 408 and 429 answer, the codes `RequestTimeTooSkewed` and
`BadRequest`, every connection error and timeout), with the project's backoff (`client._retry`), for requests
whose repetition changes nothing: reads, listings, deletes, parts and plain PUTs. Requests that are not
(`Retry.UNPROCESSED`) are repeated only when the first attempt provably did not reach OSS: the connection
never opened, or an answer that says the request was not taken (408, 429, 503). The create-only PUT is
repeated like a read; `OssStore.put` explains why that is safe.

Everything read from OSS is bounded: an XML answer or error body past its cap is an error, not a buffer.
"""

from __future__ import annotations

import asyncio
import base64
import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from xml.etree import ElementTree

from bailian_flow.store._base import StoreError
from bailian_flow.store._oss_auth import OssCredentials, encode_query, sign_v4

if TYPE_CHECKING:
    import aiohttp

MAX_ATTEMPTS = 3
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 20.0
MAX_XML_BYTES = 16 * 1024 * 1024  # a listing page of 1000 keys of 1 KiB, URL-encoded, fits with room to spare
MAX_ERROR_BYTES = 64 * 1024
RETRY_STATUSES = frozenset({401, 408, 429})
RETRY_CODES = frozenset({"RequestTimeTooSkewed", "BadRequest"})
NOT_TAKEN_STATUSES = frozenset({408, 429, 503})


class Retry(enum.Enum):
    ALWAYS = "always"
    UNPROCESSED = "unprocessed"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class OssServiceError(StoreError):
    """An error answer from OSS (or a request that never got one: `status` None)."""

    # More than one attempt was made before this error: an earlier one may have been processed.
    retried: bool = False


def _xml_text(root: ElementTree.Element, name: str) -> str | None:
    found = root.find(name)
    return found.text if found is not None else None


def parse_xml(body: bytes, what: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise StoreError(f"OSS answered {what} with malformed XML: {exc}") from None


class OssHttp:
    """Requests to one bucket; `credentials()` is asked before every attempt (FC refreshes STS tokens)."""

    def __init__(
        self,
        bucket: str,
        base_url: str,
        *,
        path_style: bool,
        region: str,
        credentials: Callable[[], OssCredentials | None],
    ) -> None:
        scheme, _, host = base_url.partition("://")
        self.bucket = bucket
        self._scheme = scheme
        self._host = host.rstrip("/")
        self._path_style = path_style
        self._region = region
        self._credentials = credentials
        self._session: aiohttp.ClientSession | None = None

    def url(self, key: str | None, query: str) -> str:
        path = quote(key) if key is not None else ""
        if self._path_style:
            url = f"{self._scheme}://{self._host}/{self.bucket}/{path}"
        else:
            url = f"{self._scheme}://{self.bucket}.{self._host}/{path}"
        return f"{url}?{query}" if query else url

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
            # OSS may gzip an answer it is asked to; a ranged read must get the stored bytes as they are.
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
            # aiohttp silently resends an idempotent request (PUT included) once when a pooled connection
            # breaks; `send` must see every attempt, or a create-only PUT could not tell its lost answer.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(
        self,
        method: str,
        key: str | None,
        *,
        action: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | tuple[bytes, ...] | None = None,
        retry: Retry = Retry.ALWAYS,
        max_body: int | None = None,
    ) -> Answer:
        """The 2xx answer, else OssServiceError with OSS's status and code once retries are spent.

        `body` as a tuple of pieces goes as they are, with their total as its Content-Length (a part is never joined
        into one more buffer of its size)."""
        import aiohttp

        query = encode_query(params or {})
        target = f"{self.bucket}/{key if key is not None else ''}"
        attempt = 0
        while True:
            attempt += 1
            answered: Mapping[str, str] = {}
            try:
                answer = await self._attempt(method, key, query, headers, body, max_body)
            except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
                failure: OssServiceError = OssServiceError(f"OSS {action} {target} failed: {type(exc).__name__}")
                failure.__cause__ = exc
                may_retry = True
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure = OssServiceError(f"OSS {action} {target} failed: {type(exc).__name__}")
                failure.__cause__ = exc
                may_retry = retry is Retry.ALWAYS
            else:
                if answer.status < 300:
                    return answer
                failure = self._service_error(action, target, answer)
                may_retry = _retryable_answer(answer.status, failure.code, retry)
                answered = answer.headers
            failure.retried = attempt > 1
            if not may_retry or attempt >= MAX_ATTEMPTS:
                raise failure
            delay = _backoff(attempt - 1, answered)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        key: str | None,
        query: str,
        headers: Mapping[str, str] | None,
        body: bytes | tuple[bytes, ...] | None,
        max_body: int | None,
    ) -> Answer:
        import yarl

        sent = {"Accept-Encoding": "identity", **(headers or {})}
        if body is not None and "Content-Type" not in sent:
            # aiohttp would add its own after signing, and an unsigned Content-Type fails the signature.
            sent["Content-Type"] = "application/octet-stream"
        credentials = self._credentials()
        if credentials is not None:
            sign_v4(method, self.bucket, key, query, sent, credentials, self._region)
        url = yarl.URL(self.url(key, query), encoded=True)
        data: Any = body
        if isinstance(body, tuple):
            sent["Content-Length"] = str(sum(map(len, body)))
            data = _pieces(body)
        async with self._open().request(method, url, headers=sent, data=data) as response:
            if method == "HEAD":
                content = b""
            elif response.status >= 300:
                # Only Code and Message are wanted from an error body: its head is enough.
                content = await response.content.read(MAX_ERROR_BYTES)
            else:
                content = await _read(response, max_body)
            return Answer(response.status, response.headers, content)

    def _service_error(self, action: str, target: str, answer: Answer) -> OssServiceError:
        code = message = request_id = None
        raw = answer.body
        if not raw and "x-oss-err" in answer.headers:  # a HEAD carries its error body base64-encoded
            try:
                raw = base64.b64decode(answer.headers["x-oss-err"][: MAX_ERROR_BYTES * 2], validate=False)
            except ValueError:
                raw = b""
        if raw:
            try:
                root = ElementTree.fromstring(raw)
            except ElementTree.ParseError:
                root = None
            if root is not None:
                code, message = _xml_text(root, "Code"), _xml_text(root, "Message")
                request_id = _xml_text(root, "RequestId")
        request_id = request_id or answer.headers.get("x-oss-request-id")
        detail = f"{answer.status} {code}" if code else str(answer.status)
        if message:
            detail += f": {self._scrub(message[:300])}"
        if request_id:
            detail += f" (request {request_id[:64]})"
        return OssServiceError(f"OSS {action} {target} failed: {detail}", status=answer.status, code=code)

    def _scrub(self, text: str) -> str:
        """OSS echoes parts of a request in its messages; the secret and the token never leave with them."""
        try:
            credentials = self._credentials()
        except StoreError:
            return text
        if credentials is not None:
            for secret in (credentials.access_key_secret, credentials.security_token):
                if secret:
                    text = text.replace(secret, "***")
        return text


async def _pieces(body: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for piece in body:
        yield piece


async def _read(response: Any, limit: int | None) -> bytes:
    if limit is None:
        data: bytes = await response.read()
        return data
    buffer = bytearray()
    async for piece in response.content.iter_chunked(64 * 1024):
        buffer += piece
        if len(buffer) > limit:
            raise StoreError(f"OSS answer exceeds {limit} bytes")
    return bytes(buffer)


def _retryable_answer(status: int, code: str | None, retry: Retry) -> bool:
    if retry is Retry.UNPROCESSED:
        return status in NOT_TAKEN_STATUSES
    return status >= 500 or status in RETRY_STATUSES or code in RETRY_CODES


def _backoff(retry_index: int, headers: Mapping[str, str]) -> float | None:
    """The wait before retry `retry_index` (0-based), None when the server's Retry-After is too long to wait.

    The SDK's base delay (0.2 s) and cap (20 s); imported on the first retry only, so a cold start that never
    retries does not load the client's policy."""
    from bailian_flow.client._config import RetryConfig
    from bailian_flow.client._retry import parse_retry_after, retry_wait

    retry_after = parse_retry_after({name.lower(): value for name, value in headers.items()})
    return retry_wait(retry_index, RetryConfig(initial_delay=0.2, max_delay=20.0), retry_after)
