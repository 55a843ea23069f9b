"""Function Compute event models (OSS, timer, HTTP), the HTTP response shape, and context stand-ins."""

from __future__ import annotations

from bailian_flow.fc._base import InvalidEvent
from bailian_flow.fc._context import (
    Context310,
    Context312,
    Credentials,
    Deadline,
    FCContext,
    FunctionMeta,
    ServiceMeta,
    make_context,
)
from bailian_flow.fc._http import HttpEvent, HttpResponse, parse_http_event
from bailian_flow.fc._oss import (
    OssEvent,
    OssEventRecord,
    TimerEvent,
    decode_object_key,
    parse_oss_event,
    parse_timer_event,
)

__all__ = [
    "Context310",
    "Context312",
    "Credentials",
    "Deadline",
    "FCContext",
    "FunctionMeta",
    "HttpEvent",
    "HttpResponse",
    "InvalidEvent",
    "OssEvent",
    "OssEventRecord",
    "ServiceMeta",
    "TimerEvent",
    "decode_object_key",
    "make_context",
    "parse_http_event",
    "parse_oss_event",
    "parse_timer_event",
]
