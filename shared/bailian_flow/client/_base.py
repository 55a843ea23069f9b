"""The client object and its request core: one aiohttp session, endpoints, auth, limits, retries, errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from . import errors
from ._answers import Answer, Operation, error_fields, header_request_id
from ._config import (
    DEFAULT_RATE_LIMITS,
    ClientOptions,
    Endpoints,
    Family,
    Limiter,
    RetryConfig,
    Secret,
    SecretLike,
    Timeouts,
    env,
    resolve_endpoints,
)
from ._ratelimit import TokenBucket
from ._retry import is_retryable, parse_retry_after, retry_wait

if TYPE_CHECKING:
    from types import TracebackType

    from pydantic import BaseModel

    from ._streams import UploadSource
    from .resources.batches import Batches
    from .resources.compat_files import CompatFiles
    from .resources.custom_models import CustomModels
    from .resources.deployments import Deployments
    from .resources.files import Files
    from .resources.fine_tunes import FineTunes
    from .resources.responses import Responses
    from .resources.uploads import Uploads

__all__ = ["Answer", "BailianClient", "Operation"]

logger = logging.getLogger("bailian_flow.client")
ModelT = TypeVar("ModelT", bound="BaseModel")
_USER_AGENT = "bailian-flow/0.1 (aiohttp)"


class BailianClient:
    """Async client of the Bailian (DashScope) model-management API.

    ``async with BailianClient() as client: ...`` — one aiohttp session per client, closed on exit.
    The API key defaults to ``DASHSCOPE_API_KEY``, the region to ``DASHSCOPE_REGION`` (``cn``), the root URL
    to ``DASHSCOPE_BASE_URL`` (one root for both families, native and compatible: the emulator), the
    workspace to ``DASHSCOPE_WORKSPACE``.
    """

    def __init__(
        self,
        api_key: str | SecretLike | None = None,
        region: str | None = None,
        base_url: str | None = None,
        workspace: str | None = None,
        *,
        retry: RetryConfig | None = None,
        timeouts: Timeouts | None = None,
        rate_limits: Mapping[Limiter | str, float | None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        key = api_key if api_key is not None else env("DASHSCOPE_API_KEY", environ)
        if isinstance(key, str):
            self._api_key: SecretLike | None = Secret(key) if key else None
        else:
            self._api_key = key
        self.region = region or env("DASHSCOPE_REGION", environ) or "cn"
        self.endpoints: Endpoints = resolve_endpoints(self.region, base_url or env("DASHSCOPE_BASE_URL", environ))
        self.workspace = workspace or env("DASHSCOPE_WORKSPACE", environ)
        limits = dict(DEFAULT_RATE_LIMITS)
        for name, rate in (rate_limits or {}).items():
            limits[Limiter(name)] = rate
        self.options = ClientOptions(retry or RetryConfig(), timeouts or Timeouts(), limits)
        self._buckets = {name: TokenBucket(rate) for name, rate in limits.items() if rate}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Every HTTP request sent, retries included: what a caller (the timer's report) says a piece of work cost.
        self.requests_sent = 0

    def __repr__(self) -> str:
        # The key is never shown, not even in part.
        key = "set" if self._api_key is not None else "missing"
        return (
            f"BailianClient(region={self.region!r}, native={self.endpoints.native!r}, "
            f"workspace={self.workspace!r}, api_key={key})"
        )

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> BailianClient:
        self._get_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                raise RuntimeError("this BailianClient is closed")
            timeouts = self.options.timeouts
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect, sock_read=timeouts.read),
                headers={"User-Agent": _USER_AGENT},
            )
            # aiohttp silently resends an idempotent request once when a pooled connection breaks. All retry
            # decisions live in `request` instead: it must know an attempt was ambiguous (a DELETE that then
            # finds nothing succeeded earlier) and count every attempt against the bounds.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    # -- resources (imported on first use: a handler pays only for the families it touches) ----------------

    @cached_property
    def fine_tunes(self) -> FineTunes:
        from .resources.fine_tunes import FineTunes

        return FineTunes(self)

    @cached_property
    def deployments(self) -> Deployments:
        from .resources.deployments import Deployments

        return Deployments(self)

    @cached_property
    def custom_models(self) -> CustomModels:
        from .resources.custom_models import CustomModels

        return CustomModels(self)

    @cached_property
    def files(self) -> Files:
        from .resources.files import Files

        return Files(self)

    @cached_property
    def compat_files(self) -> CompatFiles:
        from .resources.compat_files import CompatFiles

        return CompatFiles(self)

    @cached_property
    def batches(self) -> Batches:
        from .resources.batches import Batches

        return Batches(self)

    @cached_property
    def responses(self) -> Responses:
        from .resources.responses import Responses

        return Responses(self)

    @cached_property
    def uploads(self) -> Uploads:
        from .resources.uploads import Uploads

        return Uploads(self)

    # -- request core
    # -----------------------------------------------------------------------------------------

    def _headers(self, op: Operation, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if op.family is not Family.EXTERNAL:
            # Never sent to hosts the service hands out (the OSS upload host): the key is only for DashScope.
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
            if self.workspace:
                headers["X-DashScope-WorkSpace"] = self.workspace
        if extra:
            headers.update(extra)
        return headers

    def scrub(self, text: str) -> str:
        """`text` with the API key masked: for every server-supplied message kept in an error."""
        if self._api_key is not None:
            secret = self._api_key.get_secret_value()
            if secret:
                text = text.replace(secret, "**********")
        return text

    def _status_error(
        self, op: Operation, url: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> errors.APIStatusError:
        code, message, request_id = error_fields(body)
        return errors.status_error(
            status,
            code,
            self.scrub(message or f"HTTP {status}"),
            request_id or header_request_id(headers),
            method=op.method,
            url=url,
        )

    def url(self, op: Operation, path: str) -> str:
        return self.endpoints.base(op.family) + path

    async def request(
        self,
        op: Operation,
        path: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        form: Callable[[], aiohttp.MultipartWriter | aiohttp.FormData] | None = None,
        sources: Sequence[UploadSource] = (),
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Answer:
        """Send `op` with retries as its idempotency allows; return the 2xx answer or raise a `BailianError`.

        `form` builds a fresh multipart body for each attempt; `sources` are the upload bodies inside it,
        checked for replayability before a retry. With `stream=True` the answer's `response` is returned
        unread and the caller must release it.
        """
        url = path if op.family is Family.EXTERNAL else self.url(op, path)
        config = self.options.retry
        bucket = self._buckets.get(op.limiter)
        deadline = time.monotonic() + config.total_timeout
        all_headers = self._headers(op, headers)
        query = {k: str(v) for k, v in params.items()} if params else None
        ambiguous_before = False
        retry_index = 0
        while True:
            if bucket is not None:
                await bucket.acquire()
            session = self._get_session()
            retry_after: float | None = None
            error: errors.BailianError
            self.requests_sent += 1
            try:
                response = await session.request(
                    op.method,
                    url,
                    params=query,
                    json=json,
                    data=form() if form else None,
                    headers=all_headers,
                )
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                error = _no_answer(exc, op, url)
            else:
                settled = await self._settle(op, url, response, stream)
                if isinstance(settled, Answer):
                    return settled
                error, retry_after = settled
                if op.absent_means_done and ambiguous_before and isinstance(error, errors.NotFoundError):
                    logger.debug("%s: gone after an ambiguous earlier attempt, counted as done", op.name)
                    return Answer(200, {}, b"")
            if isinstance(error, errors.APIConnectionError) and error.maybe_processed:
                ambiguous_before = True
            # A one-shot stream that was (partly) sent cannot be sent again, whatever the error.
            retryable = is_retryable(error, op.idempotent) and all(source.can_send for source in sources)
            wait = retry_wait(retry_index, config, retry_after) if retryable else None
            if wait is None or retry_index >= config.max_retries or time.monotonic() + wait > deadline:
                logger.debug("%s %s failed: %s", op.method, op.name, error)
                raise error
            logger.info("%s failed (%s); retry %d in %.2fs", op.name, _short(error), retry_index + 1, wait)
            await asyncio.sleep(wait)
            retry_index += 1

    async def _settle(
        self, op: Operation, url: str, response: aiohttp.ClientResponse, stream: bool
    ) -> Answer | tuple[errors.APIStatusError | errors.APIConnectionError, float | None]:
        """Turn an HTTP answer into an `Answer`, or into (error, the server's Retry-After)."""
        status = response.status
        headers = response.headers
        if status < 400:
            if stream:
                return Answer(status, headers, b"", response)
            try:
                body = await response.read()
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                error = errors.APIConnectionError(
                    f"answer cut short: {type(exc).__name__}", maybe_processed=True, method=op.method, url=url
                )
                return error, None
            finally:
                response.release()
            logger.debug("%s %s -> %d request_id=%s", op.method, op.name, status, header_request_id(headers))
            return Answer(status, headers, body, scrub=self.scrub)
        try:
            body = await response.read()
        except (asyncio.TimeoutError, aiohttp.ClientError):
            body = b""
        finally:
            response.release()
        return self._status_error(op, url, status, headers, body), parse_retry_after(headers)

    # -- helpers for resources
    # ----------------------------------------------------------------------------------

    def parse(self, model: type[ModelT], data: Any, answer: Answer | None = None) -> ModelT:
        from pydantic import ValidationError

        try:
            return model.model_validate(data)
        except ValidationError as exc:
            request_id = answer.request_id if answer is not None else None
            raise errors.APIResponseValidationError(
                self.scrub(f"unexpected {model.__name__} shape: {exc.error_count()} error(s): {exc.errors()[:3]}"),
                request_id=request_id,
            ) from exc


def _no_answer(exc: BaseException, op: Operation, url: str) -> errors.APIConnectionError:
    """The error for an attempt that got no HTTP answer; `maybe_processed` unless nothing was sent."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):  # could not even connect
        return errors.APIConnectionError(f"cannot connect: {name}", maybe_processed=False, method=op.method, url=url)
    sent = not _is_connect_timeout(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return errors.APITimeoutError(f"timed out: {name}", maybe_processed=sent, method=op.method, url=url)
    return errors.APIConnectionError(f"connection failed: {name}", maybe_processed=sent, method=op.method, url=url)


def _is_connect_timeout(exc: BaseException) -> bool:
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)  # aiohttp >= 3.10
    return connect_timeout is not None and isinstance(exc, connect_timeout)


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]
