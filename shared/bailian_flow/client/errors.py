"""Errors raised by the Bailian client.

The whole hierarchy::

    BailianError                      anything this client raises on purpose
     ├── APIConnectionError           no HTTP answer; `.maybe_processed` says whether the request may have run
     │    └── APITimeoutError         the answer did not come in time
     ├── APIResponseValidationError   an answer whose JSON does not have the documented shape
     ├── UploadFailedError            /files answered 200 but put the file under failed_uploads
     └── APIStatusError               an HTTP error answer (status, code, message, request_id)
          ├── BadRequestError         400 InvalidParameter, UnsupportedOperation, Arrearage, ...
          ├── AuthenticationError     401 InvalidApiKey / invalid_api_key
          ├── PermissionDeniedError   403 AccessDenied, Workspace.AccessDenied, policy expired, ...
          ├── NotFoundError           404 NotFound, ModelNotFound, WorkSpaceNotFound
          ├── RequestTimeoutError     408 RequestTimeOut
          ├── ConflictError           409 Conflict, FileAlreadyExists
          ├── RequestTooLargeError    413 BadRequest.TooLarge
          ├── RateLimitError          429 Throttling, Throttling.RateQuota, LimitRequests, ...
          │    └── QuotaExceededError 429 an account quota is full (20 jobs, 100 files / 5 GB, 2 batches)
          └── InternalServerError     5xx InternalError, SystemError, ModelUnavailable

The service answers both rate throttling and a full account quota with 429 `Throttling`; only the message (or
`Throttling.AllocationQuota`) tells them apart. Throttling passes in seconds and is retried with backoff; a full
quota lasts until something is deleted or finishes, so `QuotaExceededError` is never retried: the caller queues.

The class is chosen by HTTP status; when there is no usable status (an SSE `event:error` frame, a 200 that
carries an error code) the service code decides. None of these objects holds the API key: messages coming
from the server are scrubbed of it before they are stored (see `_base`).
"""

from __future__ import annotations

import re

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BailianError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "UploadFailedError",
    "status_error",
]


class BailianError(Exception):
    """Base class of every error raised by `bailian_flow.client`."""


class APIConnectionError(BailianError):
    """The request got no HTTP answer.

    `maybe_processed` is True when the bytes may have reached the server before the connection broke: a
    non-idempotent call (a create) may then have taken effect, and the caller must look before re-creating.
    """

    def __init__(
        self, message: str = "Connection error.", *, maybe_processed: bool, method: str = "", url: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.maybe_processed = maybe_processed
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        hint = " The request may have been processed." if self.maybe_processed else ""
        return f"{self.message}{where}{hint}"


class APITimeoutError(APIConnectionError):
    """The server did not answer in time."""

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        maybe_processed: bool = True,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message, maybe_processed=maybe_processed, method=method, url=url)


class APIResponseValidationError(BailianError):
    """A 2xx answer whose body does not match the documented shape."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class UploadFailedError(BailianError):
    """The upload call succeeded but the service rejected the file (`failed_uploads`)."""

    def __init__(self, name: str, code: str | None, message: str, *, request_id: str | None = None) -> None:
        super().__init__(f"upload of {name!r} failed: {code}: {message}")
        self.name = name
        self.code = code
        self.message = message
        self.request_id = request_id


class APIStatusError(BailianError):
    """An HTTP error answer from the service."""

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        request_id: str | None = None,
        *,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.method = method
        self.url = url

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "error"]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + f": {self.message}"
        if self.request_id:
            text += f" (request_id={self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class RequestTimeoutError(APIStatusError):
    """408: the server gave up waiting for the request."""


class ConflictError(APIStatusError):
    """409."""


class RequestTooLargeError(APIStatusError):
    """413."""


class RateLimitError(APIStatusError):
    """429: throttled or out of quota."""


class QuotaExceededError(RateLimitError):
    """429 for a full account quota, not for speed: waiting seconds does not help, freeing a resource does.

    `quota` names it: `fine-tune-jobs`, `files` or `batches` (None when the message names no known one).
    """

    @property
    def quota(self) -> str | None:
        text = f"{self.code or ''} {self.message}".lower()
        for name, words in _QUOTA_WORDS:
            if any(word in text for word in words):
                return name
        return None


class InternalServerError(APIStatusError):
    """5xx."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: RequestTooLargeError,
    429: RateLimitError,
}

# Service codes, exact or as a dotted prefix (`Throttling.RateQuota` -> `Throttling`), for answers without a
# meaningful HTTP status. Compatible-mode codes are snake_case.
_BY_CODE: dict[str, type[APIStatusError]] = {
    "InvalidParameter": BadRequestError,
    "invalid_parameter_error": BadRequestError,
    "DataInspectionFailed": BadRequestError,
    "BadRequest": BadRequestError,
    "UnsupportedOperation": BadRequestError,
    "Arrearage": BadRequestError,
    "InvalidApiKey": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "AccessDenied": PermissionDeniedError,
    "Workspace": PermissionDeniedError,
    "Model.AccessDenied": PermissionDeniedError,
    "OperationDenied": PermissionDeniedError,
    "NotFound": NotFoundError,
    "ModelNotFound": NotFoundError,
    "WorkSpaceNotFound": NotFoundError,
    "RequestTimeOut": RequestTimeoutError,
    "Conflict": ConflictError,
    "FileAlreadyExists": ConflictError,
    "BadRequest.TooLarge": RequestTooLargeError,
    "Throttling": RateLimitError,
    "LimitRequests": RateLimitError,
    "InternalError": InternalServerError,
    "SystemError": InternalServerError,
    "ModelUnavailable": InternalServerError,
}


# How a quota 429 reads (bailian-api.md: "Only 20 fine-tune job in running or succeeded allowed per user.";
# native file storage "Out of space"; the batch tasks limit), and which quota each words name.
_QUOTA_CODES = frozenset({"Throttling.AllocationQuota", "LimitExceeded.BatchTasks"})
_QUOTA_MESSAGE = re.compile(
    r"allowed per user|out of space|parallel|may run at once|quota exceeded|quota is full", re.IGNORECASE
)
_QUOTA_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fine-tune-jobs", ("fine-tune job", "fine_tune job", "finetune job")),
    ("files", ("file", "out of space")),
    ("batches", ("batch",)),
)


def is_quota_message(code: str | None, message: str) -> bool:
    """Whether a 429 says an account quota is full rather than that requests come too fast."""
    return code in _QUOTA_CODES or _QUOTA_MESSAGE.search(message) is not None


def _class_for_code(code: str | None) -> type[APIStatusError] | None:
    while code:
        if code in _BY_CODE:
            return _BY_CODE[code]
        code = code.rpartition(".")[0]
    return None


def status_error(
    status: int | None,
    code: str | None,
    message: str,
    request_id: str | None = None,
    *,
    method: str = "",
    url: str = "",
) -> APIStatusError:
    """Build the most specific `APIStatusError` for an HTTP status and/or service code."""
    cls: type[APIStatusError] | None = None
    if status is not None:
        cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else None)
    if cls is None:
        cls = _class_for_code(code) or APIStatusError
    if cls is RateLimitError and is_quota_message(code, message):
        cls = QuotaExceededError
    return cls(status, code, message, request_id, method=method, url=url)
