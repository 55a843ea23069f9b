"""Log lines: one JSON object per line (FC, for SLS) or one readable line (locally), never with a secret.

`BAILIAN_FLOW_LOG_FORMAT=json|text` chooses; unset, JSON on FC (its `FC_FUNCTION_NAME`/`FC_INSTANCE_ID` variables:
the local stack sets neither) and text elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from bailian_flow.obs._context import CONTEXT_FIELDS, bound
from bailian_flow.obs._redact import live_secrets, redact, redact_value

FORMAT_VARIABLE = "BAILIAN_FLOW_LOG_FORMAT"
LEVEL_VARIABLE = "BAILIAN_FLOW_LOG_LEVEL"
LOGGER = "bailian_flow"
# Set only by Function Compute itself (fc-runtime.md, "Context"); FC_REGION/FC_ACCOUNT_ID the local stack sets too.
FC_VARIABLES = ("FC_FUNCTION_NAME", "FC_INSTANCE_ID")
# The attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "fields", "taskName"}


def on_fc() -> bool:
    return any(os.environ.get(name) for name in FC_VARIABLES)


def chosen_format() -> str:
    chosen = os.environ.get(FORMAT_VARIABLE, "").strip().lower()
    if chosen in ("json", "text"):
        return chosen
    return "json" if on_fc() else "text"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: given as `extra={"fields": {...}}`, or as plain `extra=` keys."""
    fields: dict[str, Any] = {}
    for name, value in record.__dict__.items():
        if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
            fields[name] = value
    given = getattr(record, "fields", None)
    if isinstance(given, dict):
        fields.update(given)
    return fields


class RedactingFilter(logging.Filter):
    """Masks secrets in the message (arguments merged in first) and in the exception text of every record it sees.

    On a handler it covers every logger's records that reach it. The live secret values are read once, when the
    filter is made (the environment of a function does not change while it runs).
    """

    def __init__(self, secrets: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.secrets = live_secrets() if secrets is None else secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        record.exc_info = None  # formatted and redacted above: no formatter may render the raw one again
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        given = getattr(record, "fields", None)
        if isinstance(given, dict):
            record.fields = redact_value(given, self.secrets)
        return True


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, the context fields (null when unbound), `event` (the
    message), the record's own fields, and `error` (the traceback) when there is one."""

    def __init__(self, secrets: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.secrets = live_secrets() if secrets is None else secrets

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _iso(record.created), "level": record.levelname, "logger": record.name}
        context = bound()
        for name in CONTEXT_FIELDS:
            line[name] = context.get(name)
        for name, value in context.items():
            line.setdefault(name, value)
        line["event"] = redact(record.getMessage(), self.secrets)
        for name, value in redact_value(record_fields(record), self.secrets).items():
            # A field never hides the line's own keys: it is kept under a prefixed name instead.
            line[name if name not in line else f"field_{name}"] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["error"] = redact(record.exc_text, self.secrets)
        text = json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))
        for secret in self.secrets:  # the last net: a live secret that reached a value some other way
            text = text.replace(secret, "***")
        return text


class TextFormatter(logging.Formatter):
    """`time level logger [run_id stage]: message key=value ...`, for a terminal."""

    def __init__(self, secrets: tuple[str, ...] | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")
        self.secrets = live_secrets() if secrets is None else secrets

    def format(self, record: logging.LogRecord) -> str:
        context = bound()
        where = " ".join(str(context[name]) for name in ("function", "run_id", "stage") if context.get(name))
        record.where = f" [{where}]" if where else ""
        text = super().format(record)
        fields = redact_value(record_fields(record), self.secrets)
        fields.pop("where", None)
        if fields:
            text += " " + " ".join(f"{name}={json.dumps(value, default=str)}" for name, value in fields.items())
        return redact(text, self.secrets)


class _Installed(logging.StreamHandler):  # type: ignore[type-arg]
    """Our handler, recognisable so that configuring twice replaces it rather than doubling every line."""

    chosen = ""


# Invocations of one instance may run concurrently (threads): one configures while another logs.
_configuring = threading.Lock()


def configure(fmt: str | None = None, *, stream: Any = None, force: bool = False) -> logging.Handler | None:
    """Send `bailian_flow.*` logs through one redacting handler in the chosen format.

    On FC (or when a format is asked for, or `force`): our handler on the `bailian_flow` logger, not propagating,
    so the runtime's own root handler does not print each line a second time in its format. Locally with nothing
    asked for, the host's logging (e.g. `bailian-flow dev`'s) stays as it is, and only gains the redacting filter.
    Idempotent: a warm FC instance calls it on every invocation.
    """
    asked = fmt or os.environ.get(FORMAT_VARIABLE, "").strip().lower() or None
    logger = logging.getLogger(LOGGER)
    if not (asked or on_fc() or force):
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        return None
    chosen = asked if asked in ("json", "text") else chosen_format()
    target = stream if stream is not None else sys.stdout
    with _configuring:
        installed = [h for h in logger.handlers if isinstance(h, _Installed)]
        if len(installed) == 1 and installed[0].stream is target and installed[0].chosen == chosen:
            return installed[0]  # a warm instance's next invocation: nothing to change
        secrets = live_secrets()
        handler = _Installed(target)
        handler.chosen = chosen
        handler.setFormatter(JsonFormatter(secrets) if chosen == "json" else TextFormatter(secrets))
        handler.addFilter(RedactingFilter(secrets))
        logger.addHandler(handler)
        for old in installed:
            logger.removeHandler(old)
        logger.propagate = False
    level = os.environ.get(LEVEL_VARIABLE, "").strip().upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        logger.setLevel(level)
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # the summary and metrics lines are INFO: they must reach SLS
    return handler


def unconfigure() -> None:
    """Undo `configure` (for tests and embedding hosts): our handler gone, propagation and level as Python's."""
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, _Installed)]:
        logger.removeHandler(old)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(found)
