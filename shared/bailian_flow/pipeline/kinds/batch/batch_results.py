"""A shard's answers into the bucket, and every shard's answers merged into the input's line order.

Collecting a shard: an index custom_id → line number of the shard's lines (at most a shard's worth), its output
and error files streamed from Bailian into a local spill file, then written back sorted by line number as one
*part* object (`<line> <kind> <service line>` per line); a run of one shard writes its results instead, the output
while it arrives when it arrives in order (`batch_writes.py`). Merging: a k-way merge of the parts by line number,
streamed to OSS with a multipart upload. Memory is bounded by one shard's index, never by the input or output.
"""

from __future__ import annotations

import heapq
import json
import logging
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bailian_flow.pipeline.kinds.batch.batch_lines import (
    AHEAD_BLOCKS,
    CHUNK_SIZE,
    MERGE_READ_BYTES,
    MIN_CHUNK_SIZE,
    in_blocks,
    iter_lines,
    produce_ahead,
    shard_index,
    split_lines,
)
from bailian_flow.pipeline.kinds.batch.batch_state import BatchRun, Shard
from bailian_flow.pipeline.kinds.batch.batch_writes import InOrder, Spill, answers_body, part_body
from bailian_flow.pipeline.protocol.runtime import Flow

log = logging.getLogger("bailian_flow.pipeline")

OUTPUT, ERROR = 0, 1
# Error codes of lines the service never ran: they are sent again, not reported.
NOT_RUN_CODES = frozenset({"batch_expired", "batch_cancelled", "batch_failed"})
# Batch prices in CNY per 1K tokens (input, output): bailian-model-seed.md, "Price Reference".
BATCH_PRICES: dict[str, tuple[float, float]] = {"qwen-plus": (0.002, 0.002)}


def results_key(flow: Flow, source_key: str, run_id: str, name: str) -> str:
    """`results/<input path without .jsonl>/<run_id>/<name>`."""
    path = source_key.removeprefix(flow.settings.batches_prefix).removesuffix(".jsonl")
    return f"{flow.settings.results_prefix}{path}/{run_id}/{name}"


@dataclass
class Collected:
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # custom_id → line number of the lines the shard did not run (only when they are to be sent again).
    unfinished: dict[str, int] = field(default_factory=dict)
    # The answers went straight to the results (`collect_shard`'s `direct`).
    direct: bool = False


def part_name(attempt: int, shard: Shard) -> str:
    """A shard's part object under the run's results: named by attempt too, so a late collect of an earlier
    attempt (its actor past its lease) writes beside a newer attempt's part, never over it."""
    return f"_parts/a{attempt}-s{shard.root:05d}-g{shard.generation}.jsonl"


async def finished_ids(flow: Flow, batch: BatchRun, root: int) -> frozenset[str]:
    """The custom_ids earlier generations of a shard already answered (read back from their parts)."""
    ids: set[str] = set()
    for shard in batch.shards:
        if shard.root != root or shard.part_key is None:
            continue
        async for _, _, raw in iter_lines(flow.store, shard.part_key):
            _, _, line = raw.split(b" ", 2)
            ids.add(json.loads(line)["custom_id"])
    return frozenset(ids)


async def collect_shard(
    flow: Flow,
    source_key: str,
    batch: BatchRun,
    shard: Shard,
    part_key: str,
    *,
    resubmit: bool,
    etag: str | None,
    index: dict[str, int] | None = None,
    direct: tuple[str, str] | None = None,
) -> Collected:
    """Write the shard's part object; lines it did not run are returned (`resubmit`) or reported as errors.

    `index` (custom_id → line number of the shard's lines, as its submit recorded them) spares reading the input.
    `direct` (the output and errors keys of a run of one shard) writes them instead of a part when no line is sent
    again: there is nothing to merge.
    """
    from bailian_flow.pipeline.kinds.batch.batch_fast import answer_fields

    if index is None:
        skip = await finished_ids(flow, batch, shard.root) if shard.generation > 1 else frozenset()
        override = batch.settings.model
        index = await shard_index(flow.store, source_key, shard, override=override, skip=skip, etag=etag)
    result = Collected()
    records: list[tuple[int, int, int, int]] = []  # (line, kind, offset in spill, length)
    # A run of one shard: its answers go up as output.jsonl while they arrive, as long as they come in input order;
    # the spill is written all the same, for the sort when they do not.
    streamed = InOrder(flow.store, direct[0]) if direct is not None else None
    try:
        with tempfile.TemporaryFile(prefix="bf-shard-") as file:
            spill = Spill(file)
            for file_id, kind in ((shard.output_file_id, OUTPUT), (shard.error_file_id, ERROR)):
                if file_id is None:
                    continue
                async for _, _, raw in split_lines(flow.client.compat_files.content(file_id)):
                    if not raw.strip():
                        continue
                    fields = answer_fields(raw) or _answer_fields(json.loads(raw))
                    custom_id, code, input_tokens, output_tokens = fields
                    line_no = index.get(custom_id)
                    if line_no is None:
                        log.warning("shard %s: answer for unknown custom_id %r", shard.index, custom_id)
                        continue
                    if kind == ERROR and code in NOT_RUN_CODES:
                        continue
                    del index[custom_id]
                    line = raw if raw.endswith(b"\n") else raw + b"\n"  # the service's last may end without one
                    if kind == ERROR:
                        result.failed += 1
                    else:
                        result.completed += 1
                        result.input_tokens += int(input_tokens)
                        result.output_tokens += int(output_tokens)
                        if streamed is not None:
                            await streamed.add(line_no, line)
                    records.append(spill.add(line_no, kind, line))
            if resubmit:
                result.unfinished = index
            else:
                for custom_id, line_no in index.items():
                    result.failed += 1
                    records.append(spill.add(line_no, ERROR, _not_run_line(custom_id, shard)))
            if not spill.ordered:
                records.sort()
            if direct is not None and not result.unfinished:
                await _write_results(flow, spill, records, result, direct, streamed)
            else:
                await flow.store.put_stream(part_key, produce_ahead(part_body(spill, records), AHEAD_BLOCKS))
    finally:
        if streamed is not None:
            await streamed.abort()  # nothing once it is finished; else no object is left
    return result


async def _write_results(
    flow: Flow,
    spill: Spill,
    records: list[tuple[int, int, int, int]],
    result: Collected,
    keys: tuple[str, str],
    streamed: InOrder | None,
) -> None:
    """The run's only shard, answered whole: its answers are the results, written without a part between."""
    for kind, target in zip((OUTPUT, ERROR), keys, strict=True):
        if kind == OUTPUT and streamed is not None and await streamed.finish():
            continue
        if (result.completed if kind == OUTPUT else result.failed) == 0:
            await flow.store.put(target, b"")
        else:
            await flow.store.put_stream(target, produce_ahead(answers_body(spill, records, kind), AHEAD_BLOCKS))
    result.direct = True


def _answer_fields(answer: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(custom_id, error code, input tokens, output tokens) of a decoded answer line."""
    error = answer.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    response = answer.get("response") or {}
    usage = (response.get("body") or {}).get("usage") or {}
    input_tokens = usage.get("prompt_tokens") or usage.get("input_tokens") or 0
    output_tokens = usage.get("completion_tokens") or usage.get("output_tokens") or 0
    return answer.get("custom_id"), code, input_tokens, output_tokens


def _not_run_line(custom_id: str, shard: Shard) -> bytes:
    message = f"the request did not run: its batch ended {shard.status} and the resubmission limit is reached"
    line = {"id": None, "custom_id": custom_id, "response": None, "error": {"code": "not_run", "message": message}}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


async def _part_lines(flow: Flow, part_key: str, kind: int, chunk_size: int) -> AsyncIterator[tuple[int, bytes]]:
    async for _, _, raw in iter_lines(flow.store, part_key, chunk_size=chunk_size):
        line_no, line_kind, line = raw.split(b" ", 2)
        if int(line_kind) == kind:
            yield int(line_no), line


def merged(flow: Flow, part_keys: list[str], kind: int) -> AsyncIterator[bytes]:
    """The parts' lines of one kind, in input line order, in blocks (a k-way merge, one line per part in memory)."""
    return in_blocks(_merged_lines(flow, part_keys, kind))


async def _merged_lines(flow: Flow, part_keys: list[str], kind: int) -> AsyncGenerator[bytes, None]:
    chunk_size = max(MIN_CHUNK_SIZE, min(CHUNK_SIZE, MERGE_READ_BYTES // (2 * max(1, len(part_keys)))))
    if len(part_keys) == 1:  # one part is in line order already: its lines of the kind, as they come
        async for _, line in _part_lines(flow, part_keys[0], kind, chunk_size):
            yield line
        return
    sources = [_part_lines(flow, key, kind, chunk_size) for key in part_keys]
    heap: list[tuple[int, int, bytes]] = []
    for number, source in enumerate(sources):
        first = await anext(source, None)
        if first is not None:
            heap.append((first[0], number, first[1]))
    heapq.heapify(heap)
    while heap:
        _, number, line = heap[0]
        yield line
        following = await anext(sources[number], None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following[0], number, following[1]))


def summary(batch: BatchRun, run_id: str, source_key: str, finished_at: str) -> dict[str, Any]:
    shards = [shard for shard in batch.shards if shard.part_key]
    tokens: dict[str, list[int]] = {}
    for shard in shards:
        per_model = tokens.setdefault(shard.model, [0, 0])
        per_model[0] += shard.input_tokens
        per_model[1] += shard.output_tokens
    cost = 0.0
    unpriced = sorted(model for model in tokens if model not in BATCH_PRICES)
    for model, (input_tokens, output_tokens) in tokens.items():
        price = BATCH_PRICES.get(model)
        if price is not None:
            cost += input_tokens / 1000 * price[0] + output_tokens / 1000 * price[1]
    submitted = [shard.submitted_at for shard in shards if shard.submitted_at]
    return {
        "run_id": run_id,
        "input": source_key,
        "total": batch.total,
        "completed": sum(shard.completed for shard in shards),
        "failed": sum(shard.failed for shard in shards),
        "shards": [
            {
                "index": shard.index,
                "model": shard.model,
                "generation": shard.generation,
                "lines": shard.lines,
                "batch_id": shard.batch_id,
                "status": shard.status,
                "completed": shard.completed,
                "failed": shard.failed,
            }
            for shard in batch.shards
        ],
        "input_tokens": sum(pair[0] for pair in tokens.values()),
        "output_tokens": sum(pair[1] for pair in tokens.values()),
        "cost": {"currency": "CNY", "amount": round(cost, 6), "unpriced_models": unpriced},
        "timings": {
            "planned_at": batch.planned_at,
            "first_submitted_at": min(submitted) if submitted else None,
            "finished_at": finished_at,
        },
    }
