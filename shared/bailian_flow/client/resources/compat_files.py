"""`client.compat_files`: OpenAI-compatible files (`/compatible-mode/v1/files`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_cursor
from .._streams import CHUNK_SIZE, ProgressCallback, UploadSourceLike, open_source
from ..models.files import CompatFile, CompatFileList, FileDeleted
from ._resource import Resource, quote, stream_broken
from .files import multipart_form

__all__ = ["CompatFiles"]


def _op(name: str, method: str, limiter: Limiter, idempotent: bool, **kw: Any) -> Operation:
    return Operation(f"compat_files.{name}", method, Family.COMPATIBLE, limiter, idempotent, **kw)


# Same file service as the native API, same limits; a repeated upload stores a second file.
_UPLOAD = _op("upload", "POST", Limiter.FILE_UPLOAD, False)
_LIST = _op("list", "GET", Limiter.FILE_QUERY, True)
_GET = _op("get", "GET", Limiter.FILE_QUERY, True)
_CONTENT = _op("content", "GET", Limiter.FILE_QUERY, True)
_DELETE = _op("delete", "DELETE", Limiter.FILE_QUERY, True, absent_means_done=True)


class CompatFiles(Resource):
    async def upload(
        self,
        source: UploadSourceLike,
        purpose: str = "batch",
        filename: str | None = None,
        *,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> CompatFile:
        body = open_source(source, filename, size=size)
        body.progress = progress
        answer = await self._client.request(
            _UPLOAD,
            "/files",
            form=lambda: multipart_form([("purpose", purpose)], "file", body),
            sources=[body],
        )
        return self._client.parse(CompatFile, answer.json(), answer)

    async def list_page(
        self, *, after: str | None = None, limit: int = 100, purpose: str | None = None
    ) -> CompatFileList:
        params: dict[str, str | int] = {"limit": limit}
        if after:
            params["after"] = after
        if purpose:
            params["purpose"] = purpose
        answer = await self._client.request(_LIST, "/files", params=params)
        return self._client.parse(CompatFileList, answer.json(), answer)

    def list(self, purpose: str | None = None, limit: int = 100) -> AsyncIterator[CompatFile]:
        return iterate_cursor(lambda after: self.list_page(after=after, limit=limit, purpose=purpose))

    async def get(self, file_id: str) -> CompatFile:
        answer = await self._client.request(_GET, f"/files/{quote(file_id)}")
        return self._client.parse(CompatFile, answer.json(), answer)

    async def content(self, file_id: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The file's bytes, chunk by chunk (batch outputs can be large: never held whole)."""
        answer = await self._client.request(_CONTENT, f"/files/{quote(file_id)}/content", stream=True)
        assert answer.response is not None
        try:
            async for chunk in answer.response.content.iter_chunked(chunk_size):
                yield chunk
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise stream_broken(answer, exc) from exc
        finally:
            answer.response.release()

    async def download(self, file_id: str, path: str | os.PathLike[str]) -> Path:
        """Write the content to `path` (through a temporary sibling renamed at the end: no half files)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        handle = await asyncio.to_thread(open, partial, "wb")
        try:
            async for chunk in self.content(file_id):
                await asyncio.to_thread(handle.write, chunk)
        except BaseException:
            await asyncio.to_thread(handle.close)
            partial.unlink(missing_ok=True)
            raise
        await asyncio.to_thread(handle.close)
        os.replace(partial, target)
        return target

    async def delete(self, file_id: str) -> FileDeleted:
        answer = await self._client.request(_DELETE, f"/files/{quote(file_id)}")
        if not answer.body:
            return FileDeleted(id=file_id, deleted=True)
        return self._client.parse(FileDeleted, answer.json(), answer)
