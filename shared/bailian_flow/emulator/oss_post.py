"""PostObject: a form POST to ``/{bucket}`` (browser-style and temporary uploads, see :mod:`.uploads`)."""

from __future__ import annotations

from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import BodyPartReader, web

from .blobs import BlobTooLarge, part_chunks, remove
from .files import FieldTooLarge, read_field
from .oss_http import MAX_OBJECT_BYTES, OSS_STORE_KEY, error, publish, reserved
from .oss_store import ObjectMeta, valid_key
from .state import STATE_KEY
from .uploads import PolicyRejection, check_post_policy


def post_response(
    request: web.Request, bucket: str, key: str, meta: ObjectMeta, headers: dict[str, str], status: int
) -> web.Response:
    if status == 201:
        location = f"{request.scheme}://{request.host}/{bucket}/{quote(key)}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Bucket>{escape(bucket)}</Bucket><Location>{escape(location)}</Location>"
            f"<Key>{escape(key)}</Key><ETag>{escape(meta.quoted_etag)}</ETag></PostResponse>"
        )
        return web.Response(status=201, text=body, content_type="application/xml", headers=headers)
    return web.Response(status=status, headers=headers)


async def post_object(request: web.Request) -> web.Response:
    """PostObject: form fields, then ``file`` (fields after the file are ignored, as OSS does)."""
    refused = reserved(request)
    if refused is not None:
        return refused
    bucket = request.match_info["bucket"]
    if not request.content_type.startswith("multipart/"):
        return error(request, 400, "InvalidArgument", "PostObject needs a multipart/form-data body.")
    state = request.app[STATE_KEY]
    store = request.app[OSS_STORE_KEY]
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return error(request, 400, "InvalidArgument", "Nested multipart bodies are not supported.")
            name = (part.name or "").lower()
            if name != "file":
                fields[name] = await read_field(part)
                continue
            key = fields.get("key", "").replace("${filename}", part.filename or "")
            if not valid_key(key):
                return error(request, 400, "InvalidArgument", "The form has no valid key field before the file.")
            try:
                length_range = check_post_policy(fields, bucket, state.clock.now())
            except PolicyRejection as exc:
                return error(request, exc.status, exc.code, exc.message)
            low, high = length_range if length_range is not None else (0, MAX_OBJECT_BYTES)
            try:
                blob = await store.incoming.ingest(part_chunks(part), limit=high, drain_on_overflow=False)
            except BlobTooLarge:
                return error(request, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
            if blob.size < low:
                remove(blob.path)
                return error(
                    request,
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size.",
                )
            content_type = fields.get("content-type") or part.headers.get("Content-Type") or "application/octet-stream"
            metadata = {
                name.removeprefix("x-oss-meta-"): v for name, v in fields.items() if name.startswith("x-oss-meta-")
            }
            forbid = fields.get("x-oss-forbid-overwrite", "").strip().lower() == "true"
            status = {"200": 200, "201": 201}.get(fields.get("success_action_status", ""), 204)
            published = publish(
                request,
                bucket,
                key,
                blob,
                forbid=forbid,
                content_type=content_type,
                metadata=metadata,
                event_name="ObjectCreated:PostObject",
            )
            if isinstance(published, web.Response):
                return published
            return post_response(request, bucket, key, published[0], published[1], status)
    except FieldTooLarge as exc:
        return error(request, 400, "InvalidArgument", f"Form field {exc} is too large.")
    except ValueError as exc:
        return error(request, 400, "MalformedPOSTRequest", f"The body of your POST request is not well-formed: {exc}")
    return error(request, 400, "InvalidArgument", "The form has no file field.")
