"""What every resource shares: its client and the native answer envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import errors

if TYPE_CHECKING:
    from .._base import Answer, BailianClient

__all__ = ["Resource", "native_payload", "quote", "stream_broken"]


class Resource:
    def __init__(self, client: BailianClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._client!r})"


def native_payload(answer: Answer) -> Any:
    """The payload of a native answer: `output` (most families) or `data` (files, uploads)."""
    body = answer.json()
    if isinstance(body, dict):
        if "output" in body:
            return body["output"]
        if "data" in body:
            return body["data"]
    raise errors.APIResponseValidationError(
        answer.scrub(f"native answer without output/data: {str(body)[:200]}"), request_id=answer.request_id
    )


def quote(segment: str) -> str:
    """A path segment: ids come from the service, but never let one rewrite the path."""
    from urllib.parse import quote as _quote

    return _quote(segment, safe="")


def stream_broken(answer: Answer, exc: BaseException) -> errors.APIConnectionError:
    """A streamed answer cut off midway: the request itself was answered, so it was processed."""
    response = answer.response
    return errors.APIConnectionError(
        f"stream interrupted: {type(exc).__name__}",
        maybe_processed=True,
        method=response.method if response is not None else "",
        url=str(response.url) if response is not None else "",
    )
