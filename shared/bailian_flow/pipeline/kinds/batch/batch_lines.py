"""Reading a batch input line by line in flat memory: validate and plan shards, then stream each shard.

The plan is made in one validating pass that holds only the current line and one open shard per model;
uniqueness of `custom_id` across the whole input is checked on digests spilled to disk (`batch_unique`). A shard
is a byte range plus a model, so sending it is a ranged re-read of the input filtered to that model: no copy of
the input is ever written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bailian_flow.pipeline.kinds.batch.batch_settings import BatchSettings
from bailian_flow.pipeline.kinds.batch.batch_state import Shard
from bailian_flow.pipeline.kinds.batch.batch_unique import IdDigests, id_digest
from bailian_flow.validate import MAX_BATCH_LINE_BYTES, DatasetError, ThinkingModes, check_batch_line

if TYPE_CHECKING:
    from bailian_flow.pipeline.kinds.batch.ahead import UploadAhead
    from bailian_flow.store import ObjectStore

# One ranged GET per chunk: at 1 MiB, with none read ahead, a 200 MiB shard was 200 round trips waited for in turn.
CHUNK_SIZE = 2 << 20
# What the k-way merge's readers of k parts hold together (two chunks each: one read ahead), whatever k is.
MERGE_READ_BYTES = 8 << 20
MIN_CHUNK_SIZE = 256 << 10
# Lines are handed to the HTTP body in blocks of about this size rather than one write per line.
BODY_BLOCK = 256 * 1024
# Blocks made ahead of a multipart writer: 4 MiB, half an OSS part.
AHEAD_BLOCKS = 16


class LineTooLong(ValueError):
    def __init__(self, line: int) -> None:
        super().__init__(f"line {line} is longer than {MAX_BATCH_LINE_BYTES} bytes")
        self.line = line


async def split_lines(
    chunks: AsyncIterator[bytes], *, start: int = 0, end: int | None = None, first_line: int = 1
) -> AsyncIterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw line with its newline) for each line of `chunks` in [start, end)."""
    offset = 0  # absolute offset of buf[0]
    buf = b""
    line_no = first_line
    try:
        async for chunk in chunks:
            if not buf and offset + len(chunk) <= start:
                offset += len(chunk)
                continue
            if not buf and offset < start:
                chunk = chunk[start - offset :]
                offset = start
            buf = buf + chunk if buf else chunk
            begin = 0
            while (newline := buf.find(b"\n", begin)) >= 0:
                if end is not None and offset + begin >= end:
                    return
                yield line_no, offset + begin, buf[begin : newline + 1]
                line_no += 1
                begin = newline + 1
            buf = buf[begin:]
            offset += begin
            if end is not None and offset >= end:
                return
            if len(buf) > MAX_BATCH_LINE_BYTES:
                raise LineTooLong(line_no)
    finally:
        # Leaving early must close the source's connection now, not at garbage collection.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    if buf and (end is None or offset < end):
        yield line_no, offset, buf


async def read_ahead(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks`, the next one already on its way while the caller works on this one (two in memory at most)."""
    pending: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(chunks, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(chunks, None))
            yield chunk
    finally:
        # A caller that leaves early: the fetch under way is stopped and waited for before the source is closed.
        pending.cancel()
        await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()  # retrieved: a fetch that failed after the caller left is not news
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def produce_ahead(blocks: AsyncIterator[bytes], depth: int) -> AsyncIterator[bytes]:
    """`blocks`, made up to `depth` ahead by a task of their own: a writer that waits for its service (a multipart
    part going up) no longer stops the work that makes the next blocks."""
    queue: asyncio.Queue[tuple[bytes | None, Exception | None]] = asyncio.Queue(maxsize=depth)

    async def fill() -> None:
        try:
            async for block in blocks:
                await queue.put((block, None))
            await queue.put((None, None))
        except Exception as exc:  # handed to the reader, in the place of the block it would have been
            await queue.put((None, exc))
        finally:
            aclose = getattr(blocks, "aclose", None)
            if aclose is not None:
                await aclose()

    filling = asyncio.ensure_future(fill())
    try:
        while True:
            block, error = await queue.get()
            if error is not None:
                raise error
            if block is None:
                return
            yield block
    finally:
        filling.cancel()
        await asyncio.wait([filling])


def iter_lines(
    store: ObjectStore,
    key: str,
    *,
    start: int = 0,
    end: int | None = None,
    first_line: int = 1,
    etag: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> AsyncIterator[tuple[int, int, bytes]]:
    """The lines of an object in the store, as `split_lines` gives them; `etag` pins the version read."""
    chunks = read_ahead(store.stream(key, chunk_size=chunk_size, if_match=etag))
    return split_lines(chunks, start=start, end=end, first_line=first_line)


@dataclass
class _Filling:
    model: str
    start: int
    end: int
    first_line: int
    lines: int = 0
    bytes: int = 0


@dataclass
class Plan:
    total: int
    shards: list[Shard]


async def plan_shards(
    store: ObjectStore,
    key: str,
    settings: BatchSettings,
    *,
    max_lines: int,
    max_bytes: int,
    etag: str | None,
    ahead: UploadAhead | None = None,
) -> Plan:
    """Validate the whole input and cut it into shards of one model each; DatasetError names the first problem.

    `ahead` gets the input as it is read, and each line's custom_id, while the input can still be one shard.
    """
    ids = IdDigests()
    try:
        plan = await _plan(store, key, settings, ids, max_lines=max_lines, max_bytes=max_bytes, etag=etag, ahead=ahead)
        repeated = ids.repeated()
    finally:
        ids.close()
    if repeated:
        await _fail_on_duplicate(store, key, repeated, etag=etag)
    return plan


async def _plan(
    store: ObjectStore,
    key: str,
    settings: BatchSettings,
    ids: IdDigests,
    *,
    max_lines: int,
    max_bytes: int,
    etag: str | None,
    ahead: UploadAhead | None,
) -> Plan:
    filling: dict[str, _Filling] = {}
    done: list[_Filling] = []
    total = 0
    override = settings.model
    # One thinking mode per input file (service-contract.md): a shard is one model's lines, so per model.
    modes = ThinkingModes(key)
    from bailian_flow.pipeline.kinds.batch.batch_fast import valid_line

    endpoint = settings.endpoint
    chunks = read_ahead(store.stream(key, chunk_size=CHUNK_SIZE, if_match=etag))
    try:
        async for line_no, offset, raw in split_lines(ahead.tee(chunks) if ahead is not None else chunks):
            if not raw.strip() or not raw.endswith(b"\n"):
                # A shard's body leaves blank lines out and ends every line: not the input byte for byte.
                if ahead is not None:
                    ahead.abandon()
                if not raw.strip():
                    continue
            # The common valid line is read for its checked fields only; any other gets the full check's verdict.
            line = valid_line(raw, endpoint=endpoint, model_override=override) or check_batch_line(
                raw, object_name=key, line=line_no, endpoint=endpoint, model_override=override
            )
            modes.check(line, line=line_no)
            ids.add(line.custom_id)
            if ahead is not None:
                ahead.line(line_no, line.custom_id)
            total += 1
            # A rewritten model name changes the line's length; count the longer of the two.
            size = len(raw) + 1 + (len(override) + 16 if override else 0)
            shard = filling.get(line.model)
            if shard is not None and (shard.lines + 1 > max_lines or shard.bytes + size > max_bytes):
                done.append(shard)
                shard = None
                if ahead is not None:
                    ahead.abandon()
            if shard is None:
                shard = filling[line.model] = _Filling(line.model, offset, offset, line_no)
                if ahead is not None and len(filling) + len(done) > 1:
                    ahead.abandon()  # a second shard: the input is not one file's body
            shard.lines += 1
            shard.bytes += size
            shard.end = offset + len(raw)
    except LineTooLong as exc:
        raise DatasetError(key, f"line is longer than {MAX_BATCH_LINE_BYTES} bytes", line=exc.line) from None
    if total == 0:
        raise DatasetError(key, "the input has no requests")
    done.extend(filling.values())
    done.sort(key=lambda shard: shard.first_line)
    shards = [
        Shard(
            index=index,
            root=index,
            model=item.model,
            start=item.start,
            end=item.end,
            first_line=item.first_line,
            lines=item.lines,
            bytes=item.bytes,
        )
        for index, item in enumerate(done)
    ]
    return Plan(total=total, shards=shards)


async def _fail_on_duplicate(store: ObjectStore, key: str, repeated: set[int], *, etag: str | None) -> None:
    """Find the first line whose custom_id an earlier line used (digests only point at the candidates)."""
    first: dict[str, int] = {}
    async for line_no, _, raw in iter_lines(store, key, etag=etag):
        if not raw.strip():
            continue
        custom_id = json.loads(raw)["custom_id"]
        if id_digest(custom_id) not in repeated:
            continue
        if custom_id in first:
            reason = f"custom_id {custom_id!r} is already used on line {first[custom_id]}"
            raise DatasetError(key, reason, line=line_no, field="custom_id")
        first[custom_id] = line_no


async def shard_lines(
    store: ObjectStore,
    key: str,
    shard: Shard,
    *,
    override: str | None,
    mixed: bool,
    skip: frozenset[str] = frozenset(),
    etag: str | None = None,
    rewrite: bool = True,
    need_ids: bool = False,
) -> AsyncIterator[tuple[int, str | None, bytes]]:
    """(line number, custom_id, line as sent) of the shard's lines; the id is None when nothing needed parsing
    (always given with `need_ids`).

    `rewrite=False` leaves an overridden model's lines as they are (a reader of their ids only).
    """
    from bailian_flow.pipeline.kinds.batch.batch_fast import line_routing

    parse = need_ids or mixed or override is not None or bool(skip)
    lines = iter_lines(store, key, start=shard.start, end=shard.end, first_line=shard.first_line, etag=etag)
    async for line_no, _, raw in lines:
        if not raw.strip():
            continue
        if not raw.endswith(b"\n"):
            raw += b"\n"
        if not parse:
            yield line_no, None, raw
            continue
        routing = line_routing(raw)
        if routing is None:
            request = json.loads(raw)
            routing = request["custom_id"], request["body"]["model"]
        custom_id, model = routing
        if (override or model) != shard.model or custom_id in skip:
            continue
        if override is not None and rewrite:
            request = json.loads(raw)
            request["body"]["model"] = override
            raw = json.dumps(request, ensure_ascii=False).encode() + b"\n"
        yield line_no, custom_id, raw


async def shard_index(
    store: ObjectStore, key: str, shard: Shard, *, override: str | None, skip: frozenset[str], etag: str | None
) -> dict[str, int]:
    """custom_id → line number for the shard's lines (at most a shard's worth of entries)."""
    lines = shard_lines(store, key, shard, override=override, mixed=True, skip=skip, etag=etag, rewrite=False)
    return {custom_id: line_no async for line_no, custom_id, _ in lines if custom_id is not None}


def shard_body(
    store: ObjectStore,
    key: str,
    shard: Shard,
    *,
    override: str | None,
    mixed: bool,
    skip: frozenset[str],
    etag: str | None,
    sent: list[tuple[int, str]] | None = None,
) -> AsyncIterator[bytes]:
    """The shard as the JSONL body of a Bailian file, in blocks; `sent` gets (line number, custom_id) of each line
    of this reading (cleared when it starts: an upload that is retried reads the shard again)."""

    async def sending() -> AsyncGenerator[bytes, None]:
        if sent is not None:
            sent.clear()
        lines = shard_lines(
            store, key, shard, override=override, mixed=mixed, skip=skip, etag=etag, need_ids=sent is not None
        )
        async for line_no, custom_id, raw in lines:
            if sent is not None and custom_id is not None:
                sent.append((line_no, custom_id))
            yield raw

    return in_blocks(sending())


async def in_blocks(lines: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """`lines` joined into blocks of at least `BODY_BLOCK` bytes (the last one shorter): one write per block, not per
    line. Leaving early closes `lines` at once."""
    block: list[bytes] = []
    size = 0
    try:
        async for line in lines:
            block.append(line)
            size += len(line)
            if size >= BODY_BLOCK:
                yield b"".join(block)
                block, size = [], 0
    finally:
        await lines.aclose()
    if block:
        yield b"".join(block)
