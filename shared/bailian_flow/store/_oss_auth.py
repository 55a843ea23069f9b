"""OSS credentials and the V4 request signature (`OSS4-HMAC-SHA256`), computed as `alibabacloud_oss_v2`'s
`signer/v4.py` computes it (tests compare the two header by header): no SDK needed to talk to OSS.

Canonical request: method, the URI `/{bucket}/{key}` percent-encoded with `/` kept (whatever the address
style), the query pairs sorted as sent (a bare name for an empty value), every `x-oss-*` / `content-type` /
`content-md5` header lower-cased and sorted, an empty additional-headers line, and `UNSIGNED-PAYLOAD`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

ALGORITHM = "OSS4-HMAC-SHA256"
PRODUCT = "oss"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class OssCredentials:
    """An AccessKey pair, optionally with an STS token; the secret parts never show in a repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OssCredentials | None:
        env = os.environ if environ is None else environ
        key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not key_id or not secret:
            return None
        return cls(key_id, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)

    @classmethod
    def from_context(cls, context: Any) -> OssCredentials | None:
        """The python3.10 FC context's `credentials` (python3.12 has none); snake_case or camelCase names."""
        creds = getattr(context, "credentials", None)
        if creds is None:
            return None

        def pick(*names: str) -> str | None:
            for name in names:
                value = creds.get(name) if isinstance(creds, Mapping) else getattr(creds, name, None)
                if value:
                    return _reveal(value)
            return None

        key_id = pick("access_key_id", "accessKeyId")
        secret = pick("access_key_secret", "accessKeySecret")
        if not key_id or not secret:
            return None
        return cls(key_id, secret, pick("security_token", "securityToken"))


def _reveal(value: Any) -> str:
    secret_value = getattr(value, "get_secret_value", None)
    return str(secret_value() if callable(secret_value) else value)


def encode_query(params: Mapping[str, str]) -> str:
    """The query string as the SDK writes it (`urlencode(..., quote_via=quote)`): every character but
    letters, digits and `_.-~` percent-encoded, an empty value kept as `name=`."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params.items())


def _is_signed_header(name: str) -> bool:
    return name.startswith("x-oss-") or name in ("content-type", "content-md5")


def canonical_request(method: str, bucket: str | None, key: str | None, query: str, headers: Mapping[str, str]) -> str:
    uri = "/"
    if bucket is not None:
        uri += bucket + "/"
    if key is not None:
        uri += key
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&")) if query else []
    canonical_query = "&".join(f"{name}={value}" if value else name for name, value in pairs)
    signed = sorted((name.lower(), value) for name, value in headers.items() if _is_signed_header(name.lower()))
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in signed)
    payload = headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD)
    return f"{method}\n{quote(uri, safe='/')}\n{canonical_query}\n{canonical_headers}\n\n{payload}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_v4(
    method: str,
    bucket: str | None,
    key: str | None,
    query: str,
    headers: MutableMapping[str, str],
    credentials: OssCredentials,
    region: str,
    now: dt.datetime | None = None,
) -> None:
    """Add the date, token, payload and Authorization headers to `headers` for a request to `query` (encoded)."""
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    timestamp = now.strftime("%Y%m%dT%H%M%SZ")
    date = timestamp[:8]
    headers["x-oss-date"] = timestamp
    headers["Date"] = format_datetime(now, usegmt=True)
    if credentials.security_token:
        headers["x-oss-security-token"] = credentials.security_token
    headers["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
    scope = f"{date}/{region}/{PRODUCT}/aliyun_v4_request"
    digest = hashlib.sha256(canonical_request(method, bucket, key, query, headers).encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    signing_key = b"aliyun_v4" + credentials.access_key_secret.encode()
    for part in (date, region, PRODUCT, "aliyun_v4_request"):
        signing_key = _hmac(signing_key, part)
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"{ALGORITHM} Credential={credentials.access_key_id}/{scope},Signature={signature}"
