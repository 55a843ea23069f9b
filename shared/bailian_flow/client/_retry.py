"""When to retry and how long to wait: the whole policy in one place.

Which calls are retried
-----------------------
* Idempotent operations (GET, DELETE, cancel, PUT of an absolute value such as scale/update): every 408,
  429, 500, 502, 503 and 504 answer and every connection error or timeout. Repeating them cannot create a
  second resource; a DELETE retried after an ambiguous failure that then finds nothing (404) counts as done
  (see `_base`).
* Non-idempotent operations (POST creates and uploads):
  - 429 and 503 answers: the server said it did not take the request (throttled / unavailable), so it is safe.
    408 likewise means the server never received the whole request.
  - a connection error while connecting: nothing was sent, so it is safe.
  - any other failure after the request may have been sent (500/502/504, a dropped connection, a timeout
    waiting for the answer) is ambiguous: a blind retry could create the resource twice. It is raised, as
    `APIConnectionError(maybe_processed=True)` for the connection cases; the caller looks before creating
    again.
* A 429 that says an account quota is full (`QuotaExceededError`) is never retried: no backoff frees a quota,
  the caller must queue. Rate throttling (every other 429) keeps its backoff.
* A body streamed from a one-shot async iterator can only be sent once: once it was opened (even before its
  first chunk arrived) it is never retried, whatever the answer.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

from . import errors
from ._config import RetryConfig

__all__ = [
    "RETRYABLE_STATUSES",
    "SAFE_FOR_CREATE_STATUSES",
    "backoff_delay",
    "is_retryable",
    "parse_retry_after",
    "retry_wait",
]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Answers that prove the request was not processed, so even a create may be repeated.
SAFE_FOR_CREATE_STATUSES = frozenset({408, 429, 503})


def is_retryable(error: errors.BailianError, idempotent: bool) -> bool:
    """Whether an attempt that failed with `error` may be repeated (the rules above)."""
    if isinstance(error, errors.APIConnectionError):
        return idempotent or not error.maybe_processed
    if isinstance(error, errors.QuotaExceededError):
        return False
    if isinstance(error, errors.APIStatusError) and error.status is not None:
        return error.status in RETRYABLE_STATUSES and (idempotent or error.status in SAFE_FOR_CREATE_STATUSES)
    return False


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait: `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # neither seconds nor a date: ignore it, back off as usual
        return None
    return max(parsed.timestamp() - time.time(), 0.0)


def backoff_delay(retry_index: int, config: RetryConfig, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: 0.5 s × 2^n capped at `max_delay`, then scaled into [75 %, 100 %]."""
    base = min(config.initial_delay * 2.0**retry_index, config.max_delay)
    jitter = float((rng or random).random())
    return base * (0.75 + 0.25 * jitter)


def retry_wait(retry_index: int, config: RetryConfig, retry_after: float | None) -> float | None:
    """The delay before the next attempt, or None when the server's Retry-After is too long to wait for."""
    delay = backoff_delay(retry_index, config)
    if retry_after is not None:
        if retry_after > config.max_retry_after:
            return None
        delay = max(delay, retry_after)
    return delay
