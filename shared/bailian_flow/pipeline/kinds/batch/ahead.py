"""A run of one shard uploaded while it is planned: the input is read from OSS once, not twice.

Planning reads and validates every line. When the input can be one shard whose body is the input byte for byte (no
model override, no blank line, every line ended, within one shard's lines and bytes), the chunks the plan has
read are sent to Bailian as the body of the shard's file while the plan goes on, and the plan keeps each line's
custom_id for the collect. The upload announces the input's size (a Content-Length), and its last chunk is held back
until the plan has checked every line and every custom_id: a bad line, a duplicate id or a second shard stops the
upload before its body is whole, so no file is made (service-contract.md#C47), and the run fails, or is submitted
later as before. Any trouble with the upload itself (a refusal, a quota, a dropped connection) only falls back to
the submit, which reads the input again under its own intent.

Recovery: the file carries the shard's tag as its name (`shard_name`), the same as the submit would give it, and is
recorded with the plan; a planning intent re-driven after a crash finds a file its earlier claim made by that name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bailian_flow.client.errors import APIConnectionError, BailianError
from bailian_flow.pipeline.kinds.batch.feed import Feed, stop

if TYPE_CHECKING:
    from bailian_flow.client.models.files import CompatFile
    from bailian_flow.pipeline.kinds.batch.batch_state import Shard
    from bailian_flow.pipeline.protocol.runtime import Flow

log = logging.getLogger("bailian_flow.pipeline")

# Chunks queued for the upload: the plan runs at most this far ahead of what Bailian has taken.
QUEUE_CHUNKS = 2


class UploadAhead:
    """The first shard's file, sent as the plan reads the input; `abandon` stops it before its body is whole."""

    def __init__(self, flow: Flow, filename: str, size: int, *, max_lines: int) -> None:
        self._flow = flow
        self.filename = filename
        self.size = size
        self.max_lines = max_lines
        self.sent: list[tuple[int, str]] = []
        self.active = True
        self._feed = Feed(QUEUE_CHUNKS)
        self._held: bytes | None = None
        self._read = 0
        self._task: asyncio.Future[CompatFile] | None = None

    def _start(self) -> None:
        upload = self._flow.client.compat_files.upload(
            self._feed.blocks(), purpose="batch", filename=self.filename, size=self.size
        )
        self._task = asyncio.ensure_future(upload)

    async def _send(self, chunk: bytes | None) -> None:
        """Queue `chunk` for the upload (None ends the body); abandon when the upload ended early."""
        if self._task is None:
            self._start()
        assert self._task is not None
        if not await self._feed.put(chunk, self._task):
            self.abandon()

    async def tee(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks` as they are; each one goes to the upload once the plan has asked for the next, i.e. has
        checked every line the previous one ended. The last is held until `finish`."""
        async for chunk in chunks:
            if self.active and self._held is not None:
                await self._send(self._held)
            self._held = chunk if self.active else None
            self._read += len(chunk)
            yield chunk

    def line(self, line_no: int, custom_id: str) -> None:
        if self.active:
            self.sent.append((line_no, custom_id))
            if len(self.sent) > self.max_lines:
                self.abandon()

    def abandon(self) -> None:
        """The body would not be the shard's: stop the upload before its body is whole (nothing is made)."""
        if self.active:
            self.active = False
            self.sent = []
            self._held = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def finish(self, shards: list[Shard]) -> CompatFile | None:
        """After a plan that passed every check: the file, if the plan is one shard that is the whole input as sent;
        None (and nothing made) otherwise, or when the upload did not go through."""
        whole = len(shards) == 1 and shards[0].start == 0 and shards[0].end == self.size == self._read
        if not (self.active and whole and len(self.sent) == shards[0].lines and self._held is not None):
            await self.close()
            return None
        held, self._held = self._held, None
        await self._send(held)
        await self._send(None)
        task = self._task
        if task is None or not self.active:
            await self.close()
            return None
        try:
            return await task
        except Exception as exc:  # whatever it was, the submit can still upload the shard
            return await self._lost(exc)

    async def close(self) -> None:
        """Make sure no upload outlives the plan (on any exit from it)."""
        self.abandon()
        task, self._task = self._task, None
        if task is not None:
            await stop(task)

    async def _lost(self, exc: BaseException) -> CompatFile | None:
        """The whole body went out but the answer did not come back: a file may exist; look for it by name, else
        leave it to the submit (a file made and not found is the run's by its name, swept with the run)."""
        self.active = False
        log.info("shard upload during planning did not go through (%s): the submit uploads it", type(exc).__name__)
        if isinstance(exc, APIConnectionError) and exc.maybe_processed:
            from bailian_flow.pipeline.protocol import reconcile

            with contextlib.suppress(BailianError):
                return await reconcile.find_compat_file(self._flow, self.filename)
        return None
