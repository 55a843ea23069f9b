"""Deliver one event to the configured webhook, signed, at least once, without ever failing the pipeline."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from ._signing import secret_key, sign

if TYPE_CHECKING:
    import aiohttp

    from bailian_flow.config import Settings

log = logging.getLogger("bailian_flow.notify")

USER_AGENT = "bailian-flow-webhooks/1"
# Statuses worth another attempt: the receiver may be restarting, overloaded, or asking us to slow down.
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 5.0


def redact_url(url: str) -> str:
    """scheme://host[:port]/path only: tokens hide in user-info and query strings."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Notifier:
    """Signed Standard Webhooks notifications; a no-op when no URL is configured.

    The body is `{"type": event_type, "timestamp": ISO-8601, "data": data}`. Each attempt is re-signed with
    its own `webhook-timestamp` (receivers reject stale timestamps) while `webhook-id` stays the caller's
    `msg_id`, so a receiver dedupes repeated deliveries of one event. With a URL but no secret the request
    carries `webhook-id` and `webhook-timestamp` but no signature.
    """

    def __init__(
        self,
        url: str | None,
        secret: str | SecretStr | None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
    ):
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        if secret:
            secret_key(secret)  # fail at configuration time, not on the first event
        self.url = url or None
        self._secret = SecretStr(secret) if secret else None
        self._session = session
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Notifier:
        return cls(settings.webhook_url, settings.webhook_secret, **options)

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def __repr__(self) -> str:
        url = redact_url(self.url) if self.url else None
        secret = "'**********'" if self._secret else None
        return f"Notifier(url={url!r}, secret={secret}, attempts={self.attempts})"

    async def send(self, event_type: str, data: Mapping[str, Any], *, msg_id: str) -> bool:
        """Deliver one event; True once a 2xx answer came back, False if disabled or every attempt failed."""
        if self.url is None:
            return False
        if not msg_id:
            # A caller bug, but still not worth failing a run over.
            log.error("webhook %s not sent: msg_id must be a non-empty, deterministic id", event_type)
            return False
        try:
            payload = {
                "type": event_type,
                "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                "data": dict(data),
            }
            # default=str: a notification must not fail the pipeline over a datetime or an enum in `data`.
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
            return await self._deliver(self.url, event_type, msg_id, body)
        except Exception as exc:  # a broken receiver, URL or payload must never fail the pipeline
            log.warning(
                "webhook %s (%s) to %s not delivered: %s",
                event_type,
                msg_id,
                redact_url(self.url),
                type(exc).__name__,
            )
            return False

    async def _deliver(self, url: str, event_type: str, msg_id: str, body: bytes) -> bool:
        import aiohttp  # imported on first use: most invocations never notify

        own_session = self._session is None
        session = self._session or aiohttp.ClientSession()
        try:
            problem = ""
            for attempt in range(1, self.attempts + 1):
                retry_after: float | None = None
                try:
                    async with session.post(
                        url,
                        data=body,
                        headers=self._headers(msg_id, body),
                        timeout=aiohttp.ClientTimeout(total=self.timeout),
                        allow_redirects=False,
                    ) as response:
                        await response.read()
                        if 200 <= response.status < 300:
                            log.debug("webhook %s (%s) delivered on attempt %d", event_type, msg_id, attempt)
                            return True
                        problem = f"HTTP {response.status}"
                        if response.status not in _RETRY_STATUSES:
                            break
                        retry_after = _retry_after(response.headers.get("Retry-After"))
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    problem = type(exc).__name__
                if attempt < self.attempts:
                    delay = min(_MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                    await asyncio.sleep(min(_MAX_BACKOFF, retry_after) if retry_after is not None else delay)
            log.warning(
                "webhook %s (%s) to %s not delivered after %d attempt(s): %s",
                event_type,
                msg_id,
                redact_url(url),
                attempt,
                problem,
            )
            return False
        finally:
            if own_session:
                await session.close()

    def _headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._secret is not None:
            headers["webhook-signature"] = sign(self._secret.get_secret_value(), msg_id, timestamp, body)
        return headers


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
