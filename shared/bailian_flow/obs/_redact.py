"""Secrets out of log text: API keys, bearer tokens, access key secrets and STS tokens, webhook and callback
secrets, whatever their spelling in a message, a field or a traceback.

Two nets: the live secret values this process holds (read from its environment), wherever they appear, and
patterns for the shapes secrets take (`sk-…`, `Bearer …`, `whsec_…`, STS `CAIS…`, `name=value` and `name: value`
where the name says secret/token/password/key, a callback path's token).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Environment variables whose values are secrets (the settings' SecretStr fields, and the OSS SDK's own names).
SECRET_VARIABLES = (
    "DASHSCOPE_API_KEY",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "OSS_ACCESS_KEY_SECRET",
    "OSS_SESSION_TOKEN",
    "BAILIAN_FLOW_API_TOKEN",
    "BAILIAN_FLOW_WEBHOOK_SECRET",
    "BAILIAN_FLOW_CALLBACK_SECRET",
)
# Shorter values are too likely to occur by chance (and too weak to be real secrets).
MIN_SECRET_LENGTH = 6

# A name that says its value is secret: `…secret`, `…token` (not `…tokens`: counts are not secrets),
# `password`, `api_key`/`apikey`, `signature`, `authorization`, `credential`.
_SECRET_NAME = r"[\w.-]*?(?:secret|token|password|passwd|api[_-]?key|signature|authorization|credential)(?![a-z])"
# The value stops at whitespace, quotes, a backslash (a JSON escape), and separators of query strings and objects.
_VALUE = r"[^\s\"'\\,&;}\]]+"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bBearer\s+" + _VALUE, re.IGNORECASE), f"Bearer {MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), f"sk-{MASK}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), f"whsec_{MASK}"),
    # STS security tokens start with CAIS and run to hundreds of base64 characters.
    (re.compile(r"\bCAIS[A-Za-z0-9+/=]{16,}"), MASK),
    # A batch run's callback path: `/callbacks/batch/<run_id>/<token>`.
    (re.compile(r"(/callbacks/batch/[^/\s\"']+/)" + r"[^\s\"'\\/?#]+"), rf"\g<1>{MASK}"),
    (
        re.compile(r"(\b" + _SECRET_NAME + r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)" + _VALUE, re.IGNORECASE),
        rf"\g<1>{MASK}",
    ),
)
_SECRET_KEY = re.compile(r"^" + _SECRET_NAME + r"$", re.IGNORECASE)


def live_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secret values this process holds, longest first (a secret containing another is masked whole)."""
    env = os.environ if environ is None else environ
    values = {env.get(name, "").strip() for name in SECRET_VARIABLES}
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_KEY.match(name))


def redact_value(value: Any, secrets: tuple[str, ...] = (), depth: int = 0) -> Any:
    """A field's value with secrets masked: strings redacted, mappings by key name too, sequences item by item."""
    if isinstance(value, str):
        return redact(value, secrets)
    if depth > 8:  # a log field is never this deep; do not walk a cyclic structure forever
        return MASK
    if isinstance(value, Mapping):
        return {
            str(key): MASK if is_secret_name(str(key)) and value[key] else redact_value(value[key], secrets, depth + 1)
            for key in value
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item, secrets, depth + 1) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value), secrets)
