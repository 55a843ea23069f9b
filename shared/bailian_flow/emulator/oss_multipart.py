"""Multipart uploads: Initiate (``POST ?uploads``), UploadPart (``PUT ?partNumber&uploadId``), Complete
(``POST ?uploadId``, also ``x-oss-complete-all: yes``) and Abort (``DELETE ?uploadId``).

Parts are blobs on disk; Complete concatenates them in a worker thread and publishes the object like a PutObject
(create-only with ``x-oss-forbid-overwrite`` on Initiate or Complete), emitting
``ObjectCreated:CompleteMultipartUpload``. The ETag follows OSS: MD5 of the parts' binary MD5s, ``-<count>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from .blobs import Blob, BlobStore, body_chunks, remove
from .errors import ServiceError

MAX_PART_NUMBER = 10_000
MAX_COMPLETE_BODY = 1024 * 1024


@dataclass
class Upload:
    bucket: str
    key: str
    content_type: str
    metadata: dict[str, str]
    forbid_overwrite: bool
    parts: dict[int, Blob] = field(default_factory=dict)

    def discard(self) -> None:
        for blob in self.parts.values():
            remove(blob.path)
        self.parts.clear()


class MultipartUploads:
    def __init__(self) -> None:
        self.uploads: dict[str, Upload] = {}

    def clear(self) -> None:
        for upload in self.uploads.values():
            upload.discard()
        self.uploads.clear()


MULTIPART_KEY = web.AppKey("bailian_flow.emulator.oss_multipart", MultipartUploads)


class MultipartError(ServiceError):
    """A refused multipart step (answered as OSS XML)."""


def _encode(request: web.Request, value: str) -> str:
    return escape(quote(value, safe="/") if request.query.get("encoding-type") == "url" else value)


def initiate(
    request: web.Request, bucket: str, key: str, content_type: str, metadata: dict[str, str], forbid: bool
) -> web.Response:
    upload_id = uuid.uuid4().hex.upper()
    request.app[MULTIPART_KEY].uploads[upload_id] = Upload(bucket, key, content_type, metadata, forbid)
    encoding = "<EncodingType>url</EncodingType>" if request.query.get("encoding-type") == "url" else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult>'
        f"<Bucket>{escape(bucket)}</Bucket><Key>{_encode(request, key)}</Key><UploadId>{upload_id}</UploadId>"
        f"{encoding}</InitiateMultipartUploadResult>"
    )
    return web.Response(text=body, content_type="application/xml")


def _upload_for(request: web.Request, bucket: str, key: str) -> tuple[str, Upload]:
    upload_id = request.query.get("uploadId", "")
    upload = request.app[MULTIPART_KEY].uploads.get(upload_id)
    if upload is None or (upload.bucket, upload.key) != (bucket, key):
        raise MultipartError(404, "NoSuchUpload", "The specified upload does not exist.")
    return upload_id, upload


async def upload_part(request: web.Request, incoming: BlobStore, bucket: str, key: str) -> Blob:
    _, upload = _upload_for(request, bucket, key)
    try:
        number = int(request.query.get("partNumber", ""))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise MultipartError(400, "InvalidArgument", f"partNumber must be between 1 and {MAX_PART_NUMBER}.")
    blob = await incoming.ingest(body_chunks(request))
    replaced = upload.parts.get(number)
    if replaced is not None:
        remove(replaced.path)
    upload.parts[number] = blob
    return blob


async def complete(request: web.Request, incoming: BlobStore, bucket: str, key: str) -> tuple[Upload, Blob, str]:
    """Concatenate the chosen parts; returns the upload, the whole blob and its multipart ETag."""
    upload_id, upload = _upload_for(request, bucket, key)
    if request.headers.get("x-oss-complete-all", "").lower() == "yes":
        chosen = sorted(upload.parts)
    else:
        chosen = _listed_parts(await request.content.read(MAX_COMPLETE_BODY), upload)
    if not chosen:
        raise MultipartError(400, "InvalidPart", "The upload has no parts to complete.")
    blobs = [upload.parts[number] for number in chosen]
    whole = await asyncio.to_thread(_concatenate, incoming, [blob.path for blob in blobs])
    combined = hashlib.md5(b"".join(bytes.fromhex(blob.md5_hex) for blob in blobs), usedforsecurity=False)
    etag = f"{combined.hexdigest().upper()}-{len(blobs)}"
    del request.app[MULTIPART_KEY].uploads[upload_id]
    upload.discard()
    return upload, whole, etag


def _listed_parts(body: bytes, upload: Upload) -> list[int]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise MultipartError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    chosen: list[int] = []
    for part in root.findall("Part"):
        try:
            number = int(part.findtext("PartNumber", ""))
        except ValueError:
            raise MultipartError(400, "InvalidPart", "A part has no valid PartNumber.") from None
        etag = part.findtext("ETag", "").strip().strip('"').upper()
        blob = upload.parts.get(number)
        if blob is None or blob.etag != etag:
            raise MultipartError(400, "InvalidPart", f"Part {number} was not uploaded or its ETag differs.")
        if chosen and number <= chosen[-1]:
            raise MultipartError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        chosen.append(number)
    return chosen


def _concatenate(incoming: BlobStore, paths: list[Path]) -> Blob:
    writer = incoming.open_writer()
    try:
        for path in paths:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    writer.write(chunk)
    except BaseException:
        writer.discard()
        raise
    return incoming.commit(writer)


def complete_response(request: web.Request, bucket: str, key: str, etag: str, headers: dict[str, str]) -> web.Response:
    encoding = "<EncodingType>url</EncodingType>" if request.query.get("encoding-type") == "url" else ""
    location = f"{request.scheme}://{request.host}/{bucket}/{quote(key)}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult>'
        f"{encoding}<Location>{escape(location)}</Location><Bucket>{escape(bucket)}</Bucket>"
        f"<Key>{_encode(request, key)}</Key><ETag>&quot;{etag}&quot;</ETag></CompleteMultipartUploadResult>"
    )
    return web.Response(text=body, content_type="application/xml", headers=headers)


def abort(request: web.Request, bucket: str, key: str) -> None:
    upload_id, upload = _upload_for(request, bucket, key)
    del request.app[MULTIPART_KEY].uploads[upload_id]
    upload.discard()
