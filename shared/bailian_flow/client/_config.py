"""Endpoints, retry and rate-limit settings of the client (plain dataclasses: nothing to validate at
import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "Endpoints",
    "Family",
    "Limiter",
    "RetryConfig",
    "Secret",
    "SecretLike",
    "Timeouts",
    "resolve_endpoints",
]


class Family(str, Enum):
    """Which base URL (and which error body shape) a call uses."""

    NATIVE = "native"  # /api/v1, errors {"request_id","code","message"}
    COMPATIBLE = "compatible"  # /compatible-mode/v1, errors {"error": {...}}
    EXTERNAL = "external"  # an absolute URL handed out by the service (the OSS upload host): no API key sent


class Limiter(str, Enum):
    """Client-side rate-limit buckets: one per documented service limit, shared by every task of a client."""

    FILE_UPLOAD = "file_upload"
    FILE_QUERY = "file_query"  # file get/list/delete/content
    FINE_TUNES = "fine_tunes"
    DEPLOYMENTS = "deployments"
    CUSTOM_MODELS = "custom_models"
    BATCHES = "batches"
    RESPONSES = "responses"
    UPLOAD_POLICY = "upload_policy"
    OSS_UPLOAD = "oss_upload"


# Requests per second. Files: the documented 3 QPS upload / 10 QPS query limits; getPolicy: 100 QPS documented.
# The others have no published per-call limit: 10 QPS keeps a poll of many jobs away from gateway throttling.
DEFAULT_RATE_LIMITS: Mapping[Limiter, float | None] = {
    Limiter.FILE_UPLOAD: 3.0,
    Limiter.FILE_QUERY: 10.0,
    Limiter.FINE_TUNES: 10.0,
    Limiter.DEPLOYMENTS: 10.0,
    Limiter.CUSTOM_MODELS: 10.0,
    Limiter.BATCHES: 10.0,
    Limiter.RESPONSES: 10.0,
    Limiter.UPLOAD_POLICY: 100.0,
    Limiter.OSS_UPLOAD: None,
}

# Every documented `/batches` call (create, get, list, cancel) and the batch input upload use the compatible
# endpoint of the region's main host; `batch.dashscope.aliyuncs.com` is documented only for synchronous Batch
# Chat, which this client does not use (service-contract.md#C31).
_HOSTS = {
    "cn": "https://dashscope.aliyuncs.com",
    "intl": "https://dashscope-intl.aliyuncs.com",
}
NATIVE_PATH = "/api/v1"
COMPATIBLE_PATH = "/compatible-mode/v1"


@dataclass(frozen=True)
class Endpoints:
    native: str
    compatible: str

    def base(self, family: Family) -> str:
        if family is Family.NATIVE:
            return self.native
        if family is Family.COMPATIBLE:
            return self.compatible
        return ""


def resolve_endpoints(region: str, base_url: str | None) -> Endpoints:
    """Base URLs for a region; `base_url` (a root such as ``http://127.0.0.1:8080``) overrides both.

    One root for every family lets a single `DASHSCOPE_BASE_URL` point the whole client at the emulator.
    """
    if base_url:
        root = base_url.rstrip("/")
        # Tolerate a root given with the native suffix (the SDK's DASHSCOPE_HTTP_BASE_URL style).
        if root.endswith(NATIVE_PATH):
            root = root[: -len(NATIVE_PATH)]
        return Endpoints(root + NATIVE_PATH, root + COMPATIBLE_PATH)
    try:
        main = _HOSTS[region]
    except KeyError:
        raise ValueError(f"unknown region {region!r}: expected one of {sorted(_HOSTS)}") from None
    return Endpoints(main + NATIVE_PATH, main + COMPATIBLE_PATH)


@dataclass(frozen=True)
class RetryConfig:
    """Bounded retries: at most `max_retries` extra attempts and `total_timeout` seconds of waiting overall.

    Delay before retry n (0-based) is ``min(initial_delay * 2**n, max_delay)`` scaled by a random factor
    in [0.75, 1] (jitter spreads the retries of concurrent tasks), or the server's Retry-After if longer.
    """

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    total_timeout: float = 120.0
    # A server asking to wait longer than this is not worth blocking on: the error is raised instead.
    max_retry_after: float = 60.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    # Per read of the socket: long uploads and downloads stay alive as long as bytes keep flowing.
    read: float = 120.0


@dataclass(frozen=True)
class ClientOptions:
    retry: RetryConfig = field(default_factory=RetryConfig)
    timeouts: Timeouts = field(default_factory=Timeouts)
    rate_limits: Mapping[Limiter, float | None] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return value or None


class SecretLike(Protocol):
    """Anything holding a secret the way pydantic's SecretStr does (which is accepted as is)."""

    def get_secret_value(self) -> str: ...


class Secret:
    """The API key: readable only through `get_secret_value()`, masked in repr, str and pickles.

    pydantic's SecretStr behaves the same but importing it loads pydantic's internals, which is most of this
    package's import time: the client keeps its own.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")
