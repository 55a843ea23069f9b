"""The OSS subset, path-style ``/{bucket}/{key}``, as the ``alibabacloud-oss-v2`` SDK speaks it.

PutObject (create-only with ``x-oss-forbid-overwrite``), GetObject (``Range``, ``If-Match`` & co.),
HeadObject, DeleteObject, ListObjects (v1 and v2, ``encoding-type=url`` as the SDK always asks), PostObject
(form upload, with the temporary-upload policy of :mod:`.uploads`). Errors are OSS XML; HEAD errors carry the
same XML base64 in ``x-oss-err`` because a HEAD answer has no body. Signatures are not checked; buckets spring
into existence on first write and reading a bucket never written is an empty bucket, not ``NoSuchBucket``.

Routes are ``/{bucket}`` and ``/{bucket}/{key:.+}``: aiohttp tries resources with a longer fixed prefix first,
so the API families keep their paths whatever the registration order; a request reaching these handlers under
a reserved first segment (``api``, ``compatible-mode``, ``_emulator``) gets that family's 404 or 405.
"""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime

from aiohttp import web

from . import oss_multipart as multipart
from .blobs import BlobTooLarge, body_chunks, remove, stream_file
from .errors import new_oss_request_id
from .oss_events import OSS_EVENTS_KEY, setup_events
from .oss_http import MAX_OBJECT_BYTES, OSS_STORE_KEY, error, object_target, publish, reserved
from .oss_list import list_objects
from .oss_post import post_object
from .oss_store import ObjectMeta, OssStore
from .state import STATE_KEY


def _object_headers(meta: ObjectMeta, request_id: str) -> dict[str, str]:
    headers = {
        "ETag": meta.quoted_etag,
        "Last-Modified": formatdate(meta.last_modified, usegmt=True),
        "Content-Type": meta.content_type,
        "Accept-Ranges": "bytes",
        "x-oss-object-type": "Normal",
        "x-oss-storage-class": "Standard",
        "x-oss-request-id": request_id,
    }
    for name, value in meta.metadata.items():
        headers[f"x-oss-meta-{name}"] = value
    return headers


def _precondition(request: web.Request, meta: ObjectMeta) -> web.Response | None:
    """If-Match / If-None-Match / If-(Un)Modified-Since on GET and HEAD."""
    if_match = request.headers.get("If-Match")
    if if_match is not None and not _etag_matches(if_match, meta):
        return error(
            request,
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and _etag_matches(if_none_match, meta):
        return web.Response(status=304, headers={"ETag": meta.quoted_etag})
    since = _http_date(request.headers.get("If-Modified-Since"))
    if if_none_match is None and since is not None and int(meta.last_modified) <= since:
        return web.Response(status=304, headers={"ETag": meta.quoted_etag})
    until = _http_date(request.headers.get("If-Unmodified-Since"))
    if if_match is None and until is not None and int(meta.last_modified) > until:
        return error(
            request,
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
    return None


def _etag_matches(header: str, meta: ObjectMeta) -> bool:
    candidates = [part.strip().removeprefix("W/").strip('"').upper() for part in header.split(",")]
    return "*" in candidates or meta.etag in candidates


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` → half-open (start, end); None when not satisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            return (max(0, size - suffix), size) if suffix > 0 and size > 0 else None
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return None
    return start, min(end, size)


async def get_object(request: web.Request) -> web.StreamResponse:
    target = object_target(request)
    if isinstance(target, web.Response):
        return target
    bucket, key = target
    store = request.app[OSS_STORE_KEY]
    meta = store.get(bucket, key)
    if meta is None:
        return error(request, 404, "NoSuchKey", "The specified key does not exist.")
    refused = _precondition(request, meta)
    if refused is not None:
        return refused
    headers = _object_headers(meta, new_oss_request_id())
    start, end, status = 0, meta.size, 200
    range_header = request.headers.get("Range")
    if range_header:
        span = _parse_range(range_header, meta.size)
        if span is not None:
            start, end, status = span[0], span[1], 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{meta.size}"
        elif request.headers.get("x-oss-range-behavior", "").lower() == "standard":
            response = error(request, 416, "InvalidRange", "The requested range cannot be satisfied.")
            response.headers["Content-Range"] = f"bytes */{meta.size}"
            return response
    if request.method == "HEAD":
        headers["Content-Length"] = str(end - start)
        return web.Response(status=status, headers=headers)
    stream = web.StreamResponse(status=status, headers=headers)
    stream.content_length = end - start
    return await stream_file(request, stream, store.data_path(meta), start, end)


async def put_object(request: web.Request) -> web.Response:
    target = object_target(request)
    if isinstance(target, web.Response):
        return target
    bucket, key = target
    if "x-oss-copy-source" in request.headers:
        return error(request, 501, "NotImplemented", "The emulator does not implement CopyObject.")
    store = request.app[OSS_STORE_KEY]
    if "uploadId" in request.query:
        try:
            part = await multipart.upload_part(request, store.incoming, bucket, key)
        except multipart.MultipartError as exc:
            return error(request, exc.status, exc.code, exc.message)
        return web.Response(headers={"ETag": f'"{part.etag}"', "x-oss-request-id": new_oss_request_id()})
    try:
        blob = await store.incoming.ingest(body_chunks(request), limit=MAX_OBJECT_BYTES, drain_on_overflow=False)
    except BlobTooLarge:
        return error(request, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    content_md5 = request.headers.get("Content-MD5")
    if content_md5 is not None and content_md5.strip() != blob.md5_base64:
        remove(blob.path)
        return error(request, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    published = publish(
        request,
        bucket,
        key,
        blob,
        forbid=_forbid_overwrite(request),
        content_type=_content_type(request),
        metadata=_user_metadata(request),
        event_name="ObjectCreated:PutObject",
    )
    if isinstance(published, web.Response):
        return published
    return web.Response(headers=published[1])


def _user_metadata(request: web.Request) -> dict[str, str]:
    return {
        name.lower().removeprefix("x-oss-meta-"): value
        for name, value in request.headers.items()
        if name.lower().startswith("x-oss-meta-")
    }


def _forbid_overwrite(request: web.Request) -> bool:
    return request.headers.get("x-oss-forbid-overwrite", "").strip().lower() == "true"


def _content_type(request: web.Request) -> str:
    return request.headers.get("Content-Type") or "application/octet-stream"


async def post_to_object(request: web.Request) -> web.Response:
    """POST on an object: InitiateMultipartUpload (``?uploads``) or CompleteMultipartUpload (``?uploadId``)."""
    target = object_target(request)
    if isinstance(target, web.Response):
        return target
    bucket, key = target
    if "uploads" in request.query:
        return multipart.initiate(
            request, bucket, key, _content_type(request), _user_metadata(request), _forbid_overwrite(request)
        )
    if "uploadId" not in request.query:
        return error(request, 501, "NotImplemented", "The emulator does not implement this POST.")
    store = request.app[OSS_STORE_KEY]
    try:
        upload, whole, etag = await multipart.complete(request, store.incoming, bucket, key)
    except multipart.MultipartError as exc:
        return error(request, exc.status, exc.code, exc.message)
    published = publish(
        request,
        bucket,
        key,
        whole,
        forbid=upload.forbid_overwrite or _forbid_overwrite(request),
        content_type=upload.content_type,
        metadata=upload.metadata,
        event_name="ObjectCreated:CompleteMultipartUpload",
        etag=etag,
    )
    if isinstance(published, web.Response):
        return published
    return multipart.complete_response(request, bucket, key, etag, published[1])


async def delete_object(request: web.Request) -> web.Response:
    target = object_target(request)
    if isinstance(target, web.Response):
        return target
    bucket, key = target
    request_id = new_oss_request_id()
    if "uploadId" in request.query:
        try:
            multipart.abort(request, bucket, key)
        except multipart.MultipartError as exc:
            return error(request, exc.status, exc.code, exc.message)
        return web.Response(status=204, headers={"x-oss-request-id": request_id})
    meta = request.app[OSS_STORE_KEY].delete(bucket, key)
    if meta is not None:
        request.app[OSS_EVENTS_KEY].emit(
            "ObjectRemoved:DeleteObject",
            bucket=bucket,
            key=key,
            size=meta.size,
            etag=meta.etag,
            delta_size=-meta.size,
            request_id=request_id,
            source_ip=request.remote or "127.0.0.1",
        )
    # OSS answers 204 whether or not the key existed.
    return web.Response(status=204, headers={"x-oss-request-id": request_id})


async def bucket_get(request: web.Request) -> web.Response:
    refused = reserved(request)
    if refused is not None:
        return refused
    return list_objects(request, request.app[OSS_STORE_KEY], request.match_info["bucket"], new_oss_request_id())


async def bucket_put(request: web.Request) -> web.Response:
    """PutBucket: buckets exist implicitly, so creating one only materialises an empty index."""
    refused = reserved(request)
    if refused is not None:
        return refused
    request.app[OSS_STORE_KEY].buckets.setdefault(request.match_info["bucket"], {})
    return web.Response(status=200, headers={"x-oss-request-id": new_oss_request_id()})


async def bucket_head(request: web.Request) -> web.Response:
    refused = reserved(request)
    if refused is not None:
        return refused
    return web.Response(status=200, headers={"x-oss-request-id": new_oss_request_id()})


async def unsupported(request: web.Request) -> web.Response:
    refused = reserved(request)
    if refused is not None:
        return refused
    return error(request, 501, "NotImplemented", f"The emulator does not implement {request.method} here.")


def setup(app: web.Application) -> None:
    state = app[STATE_KEY]
    store = OssStore(state.data_dir / "oss")
    app[OSS_STORE_KEY] = store
    setup_events(app)
    uploads = multipart.MultipartUploads()
    app[multipart.MULTIPART_KEY] = uploads
    state.register_live("oss_objects", store.count)
    state.add_reset_hook(uploads.clear)
    state.add_reset_hook(store.clear)
    # The temporary-upload host named by docs/architecture.md; same handler as POST /{bucket}.
    app.router.add_post("/_uploads/{bucket}", post_object)
    for path in ("/{bucket}", "/{bucket}/"):
        app.router.add_get(path, bucket_get, allow_head=False)
        app.router.add_head(path, bucket_head)
        app.router.add_put(path, bucket_put)
        app.router.add_post(path, post_object)
        app.router.add_delete(path, unsupported)
    key_path = "/{bucket}/{key:.+}"
    app.router.add_get(key_path, get_object, allow_head=False)
    app.router.add_head(key_path, get_object)
    app.router.add_put(key_path, put_object)
    app.router.add_delete(key_path, delete_object)
    app.router.add_post(key_path, post_to_object)
