"""`client.files`: native file storage (`/api/v1/files`), uploads streamed in constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from .. import errors
from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_pages
from .._streams import ProgressCallback, UploadSource, UploadSourceLike, open_source
from ..limits import max_file_bytes
from ..models.files import FileInfo, FilePage, UploadedFile, UploadResult
from ._resource import Resource, native_payload, quote

__all__ = ["Files", "multipart_form"]


def _op(name: str, method: str, limiter: Limiter, idempotent: bool, **kw: Any) -> Operation:
    return Operation(f"files.{name}", method, Family.NATIVE, limiter, idempotent, **kw)


# A repeated upload stores a second copy (and uses quota): only retried when the server proved it did not
# take it.
_UPLOAD = _op("upload", "POST", Limiter.FILE_UPLOAD, False)
_LIST = _op("list", "GET", Limiter.FILE_QUERY, True)
_GET = _op("get", "GET", Limiter.FILE_QUERY, True)
_DELETE = _op("delete", "DELETE", Limiter.FILE_QUERY, True, absent_means_done=True)


def multipart_form(fields: list[tuple[str, str]], file_field: str, source: UploadSource) -> aiohttp.MultipartWriter:
    """A form-data body: the text `fields` in order, then the file part LAST (OSS requires it; others don't
    care)."""
    writer = aiohttp.MultipartWriter("form-data")
    for name, value in fields:
        part = writer.append(value, {"Content-Type": "text/plain; charset=utf-8"})
        part.set_content_disposition("form-data", name=name)
    part = writer.append_payload(source.payload())
    part.set_content_disposition("form-data", name=file_field, filename=source.filename)
    return writer


class Files(Resource):
    async def upload(
        self,
        source: UploadSourceLike,
        purpose: str = "fine-tune",
        description: str | None = None,
        filename: str | None = None,
        *,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> UploadedFile:
        """Upload a path, bytes or an async byte iterator; returns the new file's id.

        `size` (for iterators) lets the body carry a Content-Length; `progress(sent, total)` is called per
        chunk. A file over its purpose's documented limit raises `FileTooLargeError` before anything is sent;
        a full file quota raises `QuotaExceededError` (quota `files`) although the service answers 200.
        """
        body = open_source(source, filename, size=size)
        limit = max_file_bytes(purpose, body.filename)
        if limit is not None and body.size is not None and body.size > limit:
            raise errors.FileTooLargeError(body.filename, body.size, limit, purpose)
        body.progress = progress
        fields = [("purpose", purpose)]
        if description is not None:
            fields.append(("descriptions", description))
        answer = await self._client.request(
            _UPLOAD, "/files", form=lambda: multipart_form(fields, "files", body), sources=[body]
        )
        result = self._client.parse(UploadResult, native_payload(answer), answer)
        if result.uploaded_files:
            return result.uploaded_files[0]
        failed = result.failed_uploads[0] if result.failed_uploads else None
        raise errors.upload_refusal(
            (failed.name if failed else None) or body.filename,
            failed.code if failed else None,
            self._client.scrub((failed.message if failed else None) or "no file in uploaded_files"),
            answer.request_id,
        )

    async def list_page(self, page_no: int = 1, page_size: int = 10) -> FilePage:
        answer = await self._client.request(_LIST, "/files", params={"page_no": page_no, "page_size": page_size})
        return self._client.parse(FilePage, native_payload(answer), answer)

    def list(self, page_size: int = 100) -> AsyncIterator[FileInfo]:
        async def fetch(page_no: int) -> tuple[list[FileInfo], int, int]:
            page = await self.list_page(page_no, page_size)
            return page.files, page.total, page.page_size or page_size

        return iterate_pages(fetch)

    async def get(self, file_id: str) -> FileInfo:
        answer = await self._client.request(_GET, f"/files/{quote(file_id)}")
        return self._client.parse(FileInfo, native_payload(answer), answer)

    async def delete(self, file_id: str) -> None:
        await self._client.request(_DELETE, f"/files/{quote(file_id)}")
