"""Shared pieces of the OSS handlers: request ids, XML errors, bucket/key checks and publishing an object."""

from __future__ import annotations

import base64
import time

from aiohttp import web

from .blobs import Blob
from .errors import error_for_path, new_oss_request_id, oss_error
from .oss_events import OSS_EVENTS_KEY
from .oss_store import BUCKET_NAME, ObjectMeta, OssStore, valid_key
from .state import STATE_KEY

RESERVED_SEGMENTS = ("api", "compatible-mode", "_emulator")
MAX_OBJECT_BYTES = 5 * 1024**3
UNSUPPORTED_SUBRESOURCES = (
    "acl",
    "tagging",
    "append",
    "symlink",
    "restore",
)

OSS_STORE_KEY = web.AppKey("bailian_flow.emulator.oss_store", OssStore)


def error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    response = oss_error(status, code, message)
    if request.method == "HEAD" and isinstance(response.body, bytes):
        response.headers["x-oss-err"] = base64.b64encode(response.body).decode()
    return response


def reserved(request: web.Request) -> web.Response | None:
    bucket = request.match_info["bucket"]
    if bucket in RESERVED_SEGMENTS or bucket.startswith("_"):
        return error_for_path(request.path, 404, "NotFound", f"No route for {request.method} {request.path}.")
    if not BUCKET_NAME.match(bucket):
        return error(request, 400, "InvalidBucketName", f"The specified bucket {bucket!r} is not valid.")
    return None


def object_target(request: web.Request) -> tuple[str, str] | web.Response:
    refused = reserved(request)
    if refused is not None:
        return refused
    key = request.match_info["key"]
    if not valid_key(key):
        return error(request, 400, "InvalidObjectName", "The specified object name is not valid.")
    for name in UNSUPPORTED_SUBRESOURCES:
        if name in request.query:
            return error(request, 501, "NotImplemented", f"The emulator does not implement ?{name}.")
    return request.match_info["bucket"], key


def publish(
    request: web.Request,
    bucket: str,
    key: str,
    blob: Blob,
    *,
    forbid: bool,
    content_type: str,
    metadata: dict[str, str],
    event_name: str,
    etag: str | None = None,
) -> tuple[ObjectMeta, dict[str, str]] | web.Response:
    """Commit ``blob`` as ``bucket/key``, count it and emit its event; the answer headers, or a 409."""
    state = request.app[STATE_KEY]
    store = request.app[OSS_STORE_KEY]
    meta, previous = store.commit(
        bucket,
        key,
        blob,
        forbid_overwrite=forbid,
        content_type=content_type,
        metadata=metadata,
        # Wall time, as OSS keeps it: the emulated clock only speeds up Bailian's jobs.
        now=time.time(),
        etag=etag,
    )
    if meta is None:
        return error(
            request,
            409,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        )
    request_id = new_oss_request_id()
    state.count_created("oss_objects")
    request.app[OSS_EVENTS_KEY].emit(
        event_name,
        bucket=bucket,
        key=key,
        size=meta.size,
        etag=meta.etag,
        delta_size=meta.size - (previous.size if previous is not None else 0),
        request_id=request_id,
        source_ip=request.remote or "127.0.0.1",
    )
    headers = {"ETag": meta.quoted_etag, "x-oss-request-id": request_id}
    if etag is None:
        headers["Content-MD5"] = blob.md5_base64
    return meta, headers
