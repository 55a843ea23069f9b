"""Temporary upload policy, ``GET /api/v1/uploads?action=getPolicy&model=...`` (bailian-api.md section 7).

The answer points ``upload_host`` at the emulator's own OSS subset, path-style bucket ``dashscope-instant``:
``http://<request Host>/dashscope-instant``. The client then POSTs the form (``key`` =
``upload_dir/filename``, ``policy``, ``Signature``, ..., ``file`` last) there; :func:`check_post_policy` is
what the OSS PostObject handler applies: expiry against the emulated clock, the signature, and the policy's
conditions. The object lands in bucket ``dashscope-instant`` under the full key, and the upload is referred to
as ``oss://<key>``.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from aiohttp import web

from .blobs import MB
from .errors import ServiceError, native_error, new_request_id
from .oss_events import iso_time
from .state import STATE_KEY

INSTANT_BUCKET = "dashscope-instant"
POLICY_SECONDS = 300
MAX_FILE_SIZE_MB = 100
CAPACITY_LIMIT_MB = 999_999_999
# Fake credentials of the emulated upload bucket; they only let the emulator recognise its own policies.
ACCESS_KEY_ID = "LTAI5tEmulatorUploadKey"
_ACCESS_KEY_SECRET = b"bailian-flow-emulator-upload-secret"


def sign(policy_b64: str) -> str:
    """OSS V1 POST signature: base64(HMAC-SHA1(secret, policy))."""
    digest = hmac.new(_ACCESS_KEY_SECRET, policy_b64.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class PolicyRejection(ServiceError):
    """A PostObject form the policy refuses (answered as OSS XML)."""


def _parse_expiration(text: str) -> float:
    stamp = text.rstrip("Z").split(".")[0]
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")))


def check_post_policy(fields: dict[str, str], bucket: str, now: float) -> tuple[int, int] | None:
    """Validate a PostObject form's policy; returns the ``content-length-range`` (min, max) if any.

    ``fields`` has lower-cased names. No policy means an anonymous-style upload (signatures are not checked by
    the emulator). Raises :class:`PolicyRejection` when OSS would refuse the form.
    """
    policy_b64 = fields.get("policy")
    if not policy_b64:
        return None
    try:
        policy: Any = json.loads(base64.b64decode(policy_b64, validate=True))
        expires = _parse_expiration(str(policy["expiration"]))
        conditions = policy.get("conditions", [])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PolicyRejection(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if now >= expires:
        raise PolicyRejection(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    if fields.get("ossaccesskeyid") == ACCESS_KEY_ID and not hmac.compare_digest(
        fields.get("signature", ""), sign(policy_b64)
    ):
        raise PolicyRejection(
            403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature."
        )
    length_range: tuple[int, int] | None = None
    for condition in conditions:
        if isinstance(condition, dict):
            for name, expected in condition.items():
                actual = bucket if name.lower() == "bucket" else fields.get(name.lower().lstrip("$"))
                if actual != str(expected):
                    raise _condition_failed(condition)
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                length_range = (int(condition[1]), int(condition[2]))
                continue
            field_name = str(condition[1]).lower().lstrip("$")
            actual = bucket if field_name == "bucket" else fields.get(field_name, "")
            if operator == "eq" and actual != str(condition[2]):
                raise _condition_failed(condition)
            if operator == "starts-with" and not actual.startswith(str(condition[2])):
                raise _condition_failed(condition)
    return length_range


def _condition_failed(condition: object) -> PolicyRejection:
    rendered = json.dumps(condition, ensure_ascii=False)
    return PolicyRejection(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {rendered}")


async def get_policy(request: web.Request) -> web.Response:
    if request.query.get("action") != "getPolicy":
        return native_error(400, "InvalidParameter", "action must be getPolicy.")
    model = request.query.get("model", "").strip()
    if not model:
        return native_error(400, "InvalidParameter", "Required parameter model missing.")
    now = request.app[STATE_KEY].clock.now()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    owner = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()[:16]
    upload_dir = f"{INSTANT_BUCKET}/{owner}/{day}/{uuid.uuid4()}"
    max_bytes = MAX_FILE_SIZE_MB * MB
    policy = {
        "expiration": iso_time(now + POLICY_SECONDS),
        "conditions": [
            ["content-length-range", 0, max_bytes],
            ["starts-with", "$key", upload_dir],
            {"bucket": INSTANT_BUCKET},
            {"x-oss-object-acl": "private"},
            {"x-oss-forbid-overwrite": "true"},
        ],
    }
    policy_b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    data = {
        "policy": policy_b64,
        "signature": sign(policy_b64),
        "upload_dir": upload_dir,
        "upload_host": f"{request.scheme}://{request.host}/{INSTANT_BUCKET}",
        "expire_in_seconds": POLICY_SECONDS,
        "max_file_size_mb": MAX_FILE_SIZE_MB,
        "capacity_limit_mb": CAPACITY_LIMIT_MB,
        "oss_access_key_id": ACCESS_KEY_ID,
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }
    return web.json_response({"request_id": new_request_id(), "data": data})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/uploads", get_policy)
