"""Stand-ins for the `context` FC passes to handlers, with the attribute names of each runtime.

python3.10: request_id, credentials, function, service, region, account_id.
python3.12: request_id, function, region, logger, account_id, log_project, log_store (no credentials: read
`ALIBABA_CLOUD_*` from the environment).

FC's Python context has no `get_remaining_time_in_millis`: `Deadline` derives the budget from
`function.timeout` and the moment the handler started.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Runtime = Literal["python3.10", "python3.12"]
LOCAL_REGION = "cn-hangzhou"
LOCAL_ACCOUNT_ID = "1234567890123456"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FunctionMeta:
    name: str
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 60
    version_id: str = ""
    qualifier: str = "LATEST"


@dataclass(frozen=True)
class ServiceMeta:
    name: str = ""
    log_project: str = ""
    log_store: str = ""
    qualifier: str = "LATEST"
    version_id: str = ""


@dataclass(frozen=True)
class Context310:
    request_id: str
    function: FunctionMeta
    credentials: Credentials | None = None
    service: ServiceMeta = field(default_factory=ServiceMeta)
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID


@dataclass(frozen=True)
class Context312:
    request_id: str
    function: FunctionMeta
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    log_project: str = ""
    log_store: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("fc"), repr=False)


FCContext = Context310 | Context312


def make_context(
    function_name: str,
    runtime: Runtime = "python3.12",
    request_id: str | None = None,
    credentials: Credentials | None = None,
    timeout: int = 60,
    memory: int = 512,
    *,
    handler: str = "index.handler",
    region: str = LOCAL_REGION,
    account_id: str = LOCAL_ACCOUNT_ID,
) -> FCContext:
    """A context shaped like the given runtime's, for the local runtime and tests."""
    function = FunctionMeta(name=function_name, handler=handler, memory=memory, timeout=timeout)
    request_id = request_id or str(uuid.uuid4())
    if runtime == "python3.10":
        return Context310(
            request_id=request_id,
            function=function,
            credentials=credentials,
            service=ServiceMeta(name=function_name),
            region=region,
            account_id=account_id,
        )
    if credentials is not None:
        raise ValueError("python3.12 contexts carry no credentials: set ALIBABA_CLOUD_* in the environment")
    return Context312(
        request_id=request_id,
        function=function,
        region=region,
        account_id=account_id,
        logger=logging.getLogger(f"fc.{function_name}"),
    )


class Deadline:
    """The time left in this invocation, from the function's timeout and when the handler began."""

    def __init__(self, timeout_seconds: float, *, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.expires = self.started + timeout_seconds

    @classmethod
    def for_context(cls, context: Any, *, started: float | None = None, default_timeout: float = 60.0) -> Deadline:
        """Call at handler entry (or pass `started`, a `time.monotonic()` value taken there)."""
        function = getattr(context, "function", None)
        timeout = getattr(function, "timeout", None)
        seconds = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else default_timeout
        return cls(seconds, started=started)

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def remaining_ms(self) -> int:
        return int(self.remaining() * 1000)

    def expired(self, margin: float = 0.0) -> bool:
        return self.remaining() <= margin
