"""ListObjects (v1) and ListObjectsV2 answers.

Keys are walked in code-point order (= UTF-8 byte order). With ``delimiter`` the keys sharing a prefix up to
the delimiter fold into one ``CommonPrefixes`` entry, which counts against ``max-keys`` like a key. The v2
continuation token is opaque to clients: url-safe base64 of ``K:<last key>`` or ``P:<last common prefix>`` (no
character that needs URL-encoding, since the SDK URL-decodes it). With ``encoding-type=url`` (the SDK always
asks for it) Key, Prefix, Delimiter, StartAfter, Marker and CommonPrefixes are URL-encoded.
"""

from __future__ import annotations

import base64
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from .errors import oss_error
from .oss_events import iso_time
from .oss_store import ObjectMeta, OssStore

DEFAULT_MAX_KEYS = 100
MAX_MAX_KEYS = 1000


def _token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[str, str]:
    padded = token + "=" * (-len(token) % 4)
    kind, _, value = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    if kind not in ("K", "P"):
        raise ValueError(token)
    return kind, value


def list_objects(request: web.Request, store: OssStore, bucket: str, request_id: str) -> web.Response:
    query = request.query
    v2 = query.get("list-type") == "2"
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    encoding = query.get("encoding-type")
    if encoding not in (None, "", "url"):
        return _invalid("encoding-type must be url.")
    try:
        max_keys = int(query.get("max-keys", DEFAULT_MAX_KEYS))
    except ValueError:
        return _invalid("max-keys must be an integer.")
    if not 0 <= max_keys <= MAX_MAX_KEYS:
        return _invalid(f"max-keys must be between 0 and {MAX_MAX_KEYS}.")
    start_after = query.get("start-after", "") if v2 else query.get("marker", "")
    token = query.get("continuation-token")
    skip_prefix = ""
    marker = start_after
    if v2 and token:
        try:
            kind, marker = _untoken(token)
        except (ValueError, UnicodeDecodeError):
            return _invalid("The continuation-token is not valid.")
        if kind == "P":
            skip_prefix = marker
    elif not v2 and delimiter and marker.endswith(delimiter):
        skip_prefix = marker  # a v1 NextMarker that names a common prefix
    objects = store.buckets.get(bucket, {})
    contents: list[ObjectMeta] = []
    prefixes: list[str] = []
    last_entry: tuple[str, str] | None = None
    truncated = False
    for key in store.sorted_keys(bucket, prefix, marker):
        if skip_prefix and key.startswith(skip_prefix):
            continue
        common = _common_prefix(key, prefix, delimiter)
        if common is not None and last_entry == ("P", common):
            continue
        if len(contents) + len(prefixes) >= max_keys:
            truncated = True
            break
        if common is not None:
            prefixes.append(common)
            last_entry = ("P", common)
        else:
            contents.append(objects[key])
            last_entry = ("K", key)

    def enc(value: str) -> str:
        return escape(quote(value, safe="/") if encoding == "url" else value)

    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>', f"<Name>{escape(bucket)}</Name>"]
    parts.append(f"<Prefix>{enc(prefix)}</Prefix>")
    if v2:
        if start_after:
            parts.append(f"<StartAfter>{enc(start_after)}</StartAfter>")
        if token:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    else:
        parts.append(f"<Marker>{enc(start_after)}</Marker>")
    parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    parts.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
    if encoding == "url":
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if truncated and last_entry is not None:
        if v2:
            parts.append(f"<NextContinuationToken>{_token(*last_entry)}</NextContinuationToken>")
        else:
            parts.append(f"<NextMarker>{enc(last_entry[1])}</NextMarker>")
    if v2:
        parts.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>")
    for meta in contents:
        parts.append(
            f"<Contents><Key>{enc(meta.key)}</Key><LastModified>{iso_time(meta.last_modified)}</LastModified>"
            f"<ETag>{escape(meta.quoted_etag)}</ETag><Type>Normal</Type><Size>{meta.size}</Size>"
            "<StorageClass>Standard</StorageClass></Contents>"
        )
    for common in prefixes:
        parts.append(f"<CommonPrefixes><Prefix>{enc(common)}</Prefix></CommonPrefixes>")
    parts.append("</ListBucketResult>")
    return web.Response(text="".join(parts), content_type="application/xml", headers={"x-oss-request-id": request_id})


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


def _invalid(message: str) -> web.Response:
    return oss_error(400, "InvalidArgument", message)
