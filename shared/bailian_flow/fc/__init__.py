"""Function Compute event models (OSS, timer, HTTP), the HTTP response shape, and context stand-ins.

The names load on first use (PEP 562): a handler parsing an OSS event never builds the HTTP models, and FC passes
its own context, so the stand-ins stay unloaded in the cloud.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    "InvalidEvent": "_base",
    "Context310": "_context",
    "Context312": "_context",
    "Credentials": "_context",
    "Deadline": "_context",
    "FCContext": "_context",
    "FunctionMeta": "_context",
    "ServiceMeta": "_context",
    "make_context": "_context",
    "HttpEvent": "_http",
    "HttpResponse": "_http",
    "parse_http_event": "_http",
    "OssEvent": "_oss",
    "OssEventRecord": "_oss",
    "TimerEvent": "_oss",
    "decode_object_key": "_oss",
    "parse_oss_event": "_oss",
    "parse_timer_event": "_oss",
}

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
