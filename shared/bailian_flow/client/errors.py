"""Errors raised by the Bailian client.

The whole hierarchy::

    BailianError                      anything this client raises on purpose
     ├── APIConnectionError           no HTTP answer; `.maybe_processed` says whether the request may have run
     │    └── APITimeoutError         the answer did not come in time
     ├── APIResponseValidationError   an answer whose JSON does not have the documented shape
     ├── FileTooLargeError            a file over the documented per-file limit, refused before sending
     └── APIStatusError               an HTTP error answer (status, code, message, request_id)
          ├── BadRequestError         400 InvalidParameter, UnsupportedOperation, Arrearage, ...
          │    └── UploadFailedError  /files answered 200 but put the file under failed_uploads (not a quota)
          ├── AuthenticationError     401 InvalidApiKey / invalid_api_key
          ├── PermissionDeniedError   403 AccessDenied, Workspace.AccessDenied, policy expired, ...
          ├── NotFoundError           404 NotFound, ModelNotFound, WorkSpaceNotFound
          ├── RequestTimeoutError     408 RequestTimeOut
          ├── ConflictError           409 Conflict, FileAlreadyExists
          ├── RequestTooLargeError    413 BadRequest.TooLarge
          ├── RateLimitError          429 Throttling, Throttling.RateQuota, LimitRequests, ...
          │    └── QuotaExceededError an account quota is full (20 jobs, one training at a time, 100 files /
          │                           5 GB, 2 batches): a 429, or a 200 whose failed_uploads says so
          └── InternalServerError     5xx InternalError, SystemError, ModelUnavailable

The service answers both rate throttling and a full account quota with 429 `Throttling`; only the message (or
`Throttling.AllocationQuota`) tells them apart. Throttling passes in seconds and is retried with backoff; a full
quota lasts until something is deleted or finishes, so `QuotaExceededError` is never retried: the caller queues.
The native file quota is the exception: it answers 200 with the file under `data.failed_uploads`
(`BadRequest.TooMany` / `BadRequest.TooLarge` "Out of space ... storage space has been used"), which
`upload_refusal` turns into the same `QuotaExceededError` (service-contract.md#C16).

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
    "FileTooLargeError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "UploadFailedError",
    "status_error",
    "upload_refusal",
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


class FileTooLargeError(BailianError, ValueError):
    """A file over the per-file limit documented for its purpose: refused locally, nothing was sent."""

    def __init__(self, name: str, size: int, limit: int, purpose: str) -> None:
        super().__init__(
            f"{name!r} is {size} bytes, over the {limit} bytes Bailian accepts per {purpose} file "
            "(service-contract.md#C14)"
        )
        self.name = name
        self.size = size
        self.limit = limit
        self.purpose = purpose


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


class UploadFailedError(BadRequestError):
    """The upload call answered 200 but the service rejected the file (`failed_uploads`) for a reason other
    than a full quota: waiting does not help. `status` is the 200 the refusal came with."""

    def __init__(
        self, name: str, code: str | None, message: str, *, request_id: str | None = None, status: int = 200
    ) -> None:
        super().__init__(status, code, message, request_id)
        self.name = name

    def __str__(self) -> str:
        return f"upload of {self.name!r} failed: {self.code}: {self.message}"


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
    """A full account quota, not speed: waiting seconds does not help, freeing a resource does.

    `quota` names it: `fine-tune-jobs` (20 running or succeeded), `training-slot` (one training runs at a time:
    "Too many fine-tune job in running"), `files` (100 files / 5 GB, count or bytes) or `batches` (None when
    the message names no known one).
    """

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        request_id: str | None = None,
        *,
        method: str = "",
        url: str = "",
        quota: str | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id, method=method, url=url)
        self._quota = quota

    @property
    def quota(self) -> str | None:
        if self._quota is not None:
            return self._quota
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
# "Too many fine-tune job in running, please retry later." when a training already runs (service-contract.md#C8);
# native file storage "Out of space"; the batch tasks limit), and which quota each words name. The first match
# names it, so the running-slot words come before the broader fine-tune words.
_QUOTA_CODES = frozenset({"Throttling.AllocationQuota", "LimitExceeded.BatchTasks"})
_QUOTA_MESSAGE = re.compile(
    r"allowed per user|out of space|parallel|may run at once|quota exceeded|quota is full"
    r"|too many fine-tune jobs? in running",
    re.IGNORECASE,
)
_QUOTA_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("training-slot", ("too many fine-tune job",)),
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


# The native file quota's refusals (model-customization file management page, "返回示例"): the file count
# ("Out of number, <10> of <10> files has been uploaded.") and the storage space ("Out of space, <839> B of
# <1024> B storage space has been used."). `BadRequest.TooLarge` is a quota only with the storage sentence: a
# file over its own size limit is refused with the same code and waiting never lets it in.
_FILE_QUOTA_SPACE = re.compile(r"storage space|has been used", re.IGNORECASE)


def upload_refusal(
    name: str, code: str | None, message: str, request_id: str | None = None
) -> QuotaExceededError | UploadFailedError:
    """The error for a file listed under `data.failed_uploads` of a 200 answer (service-contract.md#C16)."""
    if code == "BadRequest.TooMany" or (code == "BadRequest.TooLarge" and _FILE_QUOTA_SPACE.search(message)):
        return QuotaExceededError(200, code, message, request_id, quota="files")
    return UploadFailedError(name, code, message, request_id=request_id)
