"""The units of work on a batch run's shards: submit one, collect one, merge them all; and undoing a run's shards.

Each runs under its intent (`batch-submitting`, `batch-collecting`, `batch-merging`) naming the shard in
`batch.current`, and records its result with `transitions.record` like every other stage, applied to the plan as
it is when recorded (`on_newest_plan`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from bailian_flow.client.errors import BailianError, NotFoundError, QuotaExceededError
from bailian_flow.pipeline.kinds.batch.batch_lines import AHEAD_BLOCKS, produce_ahead, shard_body
from bailian_flow.pipeline.kinds.batch.batch_results import (
    ERROR,
    OUTPUT,
    collect_shard,
    finished_ids,
    merged,
    part_name,
    results_key,
    summary,
)
from bailian_flow.pipeline.kinds.batch.batch_state import (
    BatchRun,
    Shard,
    plan_of,
    shard_name,
)
from bailian_flow.pipeline.protocol import admission, reconcile
from bailian_flow.pipeline.protocol.acting import create_or_find
from bailian_flow.pipeline.protocol.callbacks import callback_token
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import Apply, Current, load, record
from bailian_flow.store import ObjectChangedError, ObjectNotFoundError, bare_etag

log = logging.getLogger("bailian_flow.pipeline")


class QuotaWait(Exception):
    """Bailian refused a batch for a quota: the shard waits, the run does not fail."""


def batch_of(current: Current) -> BatchRun:
    return plan_of(current.state)


def _mixed(batch: BatchRun) -> bool:
    return len({shard.model for shard in batch.shards}) > 1


async def act_submit(flow: Flow, current: Current) -> None:
    state = current.state
    batch = batch_of(current)
    assert batch.current is not None and state.source.key is not None
    shard = batch.shards[batch.current]
    tag = shard_name(state.run_id, state.attempt, shard)
    key = state.source.key
    file_id = shard.file_id
    try:
        file_id = file_id or await _shard_file(flow, current, key, batch, shard, tag)
        if file_id is None:
            return  # the run was failed
        found = await create_or_find(
            flow,
            current,
            create=lambda: _create_batch(flow, current, batch, file_id, tag),
            find=lambda _generation: reconcile.find_batch(flow, tag),
            doing=f"creating the batch of shard {shard.index}",
        )
    except QuotaWait as exc:
        reason = str(exc)
        waited = await record(
            flow,
            current,
            [Made("batch-file", file_id)] if file_id else [],
            "batch-running",
            f"shard {shard.index} waits: {reason}",
            apply=on_newest_plan(current, lambda plan: _submitted(plan, shard.index, waiting=reason, file_id=file_id)),
        )
        if waited is None:
            return
        # The run joins the batches quota's line (first come, first served); the timer re-announces it as
        # `batch-ready` once a batch slot is free.
        recorded_at = await load(flow, state.run_id)
        if recorded_at is not None and recorded_at.state.stage == "batch-running":
            await admission.wait(flow, recorded_at, admission.BATCHES, "batch-ready", why=reason)
        return
    if found is None:
        return
    await record(
        flow,
        current,
        [Made("batch", found.id), Made("batch-file", file_id)],
        "batch-running",
        f"shard {shard.index} submitted as {found.id}",
        apply=on_newest_plan(
            current,
            lambda plan: _submitted(
                plan,
                shard.index,
                waiting=None,
                file_id=file_id,
                batch_id=found.id,
                status=found.status,
                submitted_at=iso_z(),
            ),
        ),
    )


def _submitted(batch: BatchRun, index: int, *, waiting: str | None, **update: Any) -> BatchRun | None:
    """The plan with shard `index` submitted (or waiting); None when another delivery submitted it meanwhile."""
    if batch.shards[index].batch_id is not None:
        return None
    return batch.model_copy(update={"waiting": waiting, "shards": _replace(batch, index, **update)})


def on_newest_plan(claimed: Current, change: Callable[[BatchRun], BatchRun | None]) -> Apply:
    """A batch act's result for `transitions.record`: `change` applied to the plan as it is when recorded.

    Batch intents recur (one per shard), so a result is never written from the claim's copy: a late actor
    cannot roll back what others recorded since. The intent is done, so its shard and its claim count are
    cleared: the next shard's claim of the same stage starts afresh.
    """
    stage = claimed.state.stage

    def apply(state: RunState) -> dict[str, Any] | None:
        updated = change(plan_of(state))
        if updated is None:
            return None
        claims = {name: count for name, count in state.claims.items() if name != stage}
        return {"batch": updated.model_copy(update={"current": None}), "claims": claims}

    return apply


# A shard as planned: what a resubmission starts from.
UNSUBMITTED: dict[str, Any] = {
    "status": "planned",
    "file_id": None,
    "batch_id": None,
    "output_file_id": None,
    "error_file_id": None,
    "submitted_at": None,
    "finished_at": None,
}


def _replace(batch: BatchRun, index: int, **update: Any) -> list[Shard]:
    return [shard.model_copy(update=update) if shard.index == index else shard for shard in batch.shards]


def sent_ids_key(flow: Flow, state: RunState, shard: Shard) -> str:
    """Where a shard's submit leaves the (line, custom_id) pairs it sent, for its collect (deleted by the merge)."""
    assert state.source.key is not None
    tag = shard_name(state.run_id, state.attempt, shard)
    return results_key(flow, state.source.key, state.run_id, f"_ids/{tag}.json")


async def _sent_index(flow: Flow, state: RunState, shard: Shard) -> dict[str, int] | None:
    """The shard's index as its submit recorded it; None when it did not (then the collect reads the input)."""
    from bailian_flow.pipeline.kinds.batch.batch_fast import decode_sent

    data = await flow.store.get(sent_ids_key(flow, state, shard))
    index = None if data is None else decode_sent(data, etag=state.source.etag, lines=shard.lines)
    key = state.source.key
    if index is not None and key is not None:
        # The input is not read, but it is still the version the run began with, or the run stops as a read would.
        found = await flow.store.head(key)
        if found is None:
            raise ObjectNotFoundError(f"no such object: {key}", status=404, code="NoSuchKey")
        etag = state.source.etag
        if etag is not None and bare_etag(etag).upper() != found.etag.upper():
            raise ObjectChangedError(f"{key} is not the version asked for", status=412, code="PreconditionFailed")
    return index


async def _shard_file(flow: Flow, current: Current, key: str, batch: BatchRun, shard: Shard, tag: str) -> str | None:
    skip = await finished_ids(flow, batch, shard.root) if shard.generation > 1 else frozenset()
    filename = f"{tag}.jsonl"
    sent: list[tuple[int, str]] = []
    uploaded = await create_or_find(
        flow,
        current,
        create=lambda: flow.client.compat_files.upload(
            shard_body(
                flow.store,
                key,
                shard,
                override=batch.settings.model,
                mixed=_mixed(batch),
                skip=skip,
                etag=current.state.source.etag,
                sent=sent,
            ),
            purpose="batch",
            filename=filename,
        ),
        find=lambda _generation: reconcile.find_compat_file(flow, filename),
        doing=f"uploading shard {shard.index}",
    )
    if uploaded is None:
        return None
    if len(sent) == shard.lines:
        # Read whole (a file found, not made, has no list): its collect reads this instead of the input again.
        await record_sent(flow, current.state, shard, sent)
    return uploaded.id


async def record_sent(flow: Flow, state: RunState, shard: Shard, sent: list[tuple[int, str]]) -> None:
    """Leave the (line, custom_id) pairs of a shard's file for its collect (`_sent_index`)."""
    from bailian_flow.pipeline.kinds.batch.batch_fast import encode_sent

    data = encode_sent(state.source.etag, sent)
    await flow.store.put(sent_ids_key(flow, state, shard), data, content_type="application/json")


async def _create_batch(flow: Flow, current: Current, batch: BatchRun, file_id: str, tag: str) -> Any:
    state = current.state
    user_name = batch.settings.metadata.ds_name
    metadata = {"ds_name": f"{user_name} {tag}" if user_name else tag}
    if batch.settings.metadata.ds_description:
        metadata["ds_description"] = batch.settings.metadata.ds_description
    secret = flow.settings.callback_secret
    if flow.settings.callback_url and secret is not None:
        token = callback_token(secret.get_secret_value(), state.run_id)
        base = flow.settings.callback_url.rstrip("/")
        metadata["ds_batch_finish_callback"] = f"{base}/callbacks/batch/{state.run_id}/{token}"
    try:
        return await flow.client.batches.create(
            file_id, batch.settings.endpoint, batch.settings.completion_window, metadata=metadata
        )
    except QuotaExceededError as exc:
        raise QuotaWait(f"Bailian refused another batch: {exc.message}") from None


async def act_collect(flow: Flow, current: Current) -> None:
    state = current.state
    batch = batch_of(current)
    assert batch.current is not None and state.source.key is not None
    shard = batch.shards[batch.current]
    resubmit = shard.status != "completed" and shard.generation <= batch.settings.resubmit_limit
    key = state.source.key
    part_key = results_key(flow, key, state.run_id, part_name(state.attempt, shard))
    index = await _sent_index(flow, state, shard)
    only = len(batch.shards) == 1 and shard.generation == 1
    direct = (
        results_key(flow, key, state.run_id, "output.jsonl"),
        results_key(flow, key, state.run_id, "errors.jsonl"),
    )
    got = await collect_shard(
        flow,
        key,
        batch,
        shard,
        part_key,
        resubmit=resubmit,
        etag=state.source.etag,
        index=index,
        direct=direct if only else None,
    )
    fields = {
        "part_key": direct[0] if got.direct else part_key,
        "direct": got.direct,
        "completed": got.completed,
        "failed": got.failed,
        "input_tokens": got.input_tokens,
        "output_tokens": got.output_tokens,
    }
    changed = f"shard {shard.index} collected: {got.completed} answered, {got.failed} failed"
    resubmitted: Shard | None = None
    if got.unfinished:
        resubmitted = shard.model_copy(
            update={**UNSUBMITTED, "generation": shard.generation + 1, "lines": len(got.unfinished)}
        )
        changed += f"; {len(got.unfinished)} unfinished lines sent again as a new shard"

    def collected(latest: BatchRun) -> BatchRun | None:
        if latest.shards[shard.index].part_key is not None:
            return None  # collected by another delivery meanwhile
        shards = _replace(latest, shard.index, **fields)
        if resubmitted is not None:
            shards.append(resubmitted.model_copy(update={"index": len(shards)}))
        return latest.model_copy(update={"shards": shards})

    # A part written by a delivery that lost is the same part: nothing to undo.
    await record(flow, current, [], "batch-running", changed, apply=on_newest_plan(current, collected))


async def act_merge(flow: Flow, current: Current) -> None:
    state = current.state
    batch = batch_of(current)
    key = state.source.key
    assert key is not None
    parts = [shard.part_key for shard in batch.shards if shard.part_key and not shard.direct]
    collected = [shard for shard in batch.shards if shard.part_key]
    # A part holds each shard's `completed` answers and `failed` errors: a kind no shard has is an empty file,
    # written without reading every part through once more.
    counts = {OUTPUT: sum(shard.completed for shard in collected), ERROR: sum(shard.failed for shard in collected)}
    for kind, name in ((OUTPUT, "output.jsonl"), (ERROR, "errors.jsonl")):
        target = results_key(flow, key, state.run_id, name)
        if not parts:
            break  # its one shard's collect wrote them (`Shard.direct`)
        if counts[kind] == 0:
            await flow.store.put(target, b"")
        else:
            await flow.store.put_stream(target, produce_ahead(merged(flow, parts, kind), AHEAD_BLOCKS))
    finished = iso_z()
    report = summary(batch, state.run_id, key, finished)
    await flow.store.put(
        results_key(flow, key, state.run_id, "summary.json"),
        json.dumps(report, indent=2).encode(),
        content_type="application/json",
    )
    # The results are in the bucket: the service's copies are no longer needed.
    await delete_batch_files(flow, batch)
    written = await record(
        flow,
        current,
        [],
        "done",
        f"results in {results_key(flow, key, state.run_id, '')}: {report['completed']} answered, "
        f"{report['failed']} failed",
        apply=on_newest_plan(current, lambda plan: plan.model_copy(update={"results_at": finished})),
    )
    if written is not None:
        for part in parts:
            await flow.store.delete(part)
        for shard in batch.shards:
            await flow.store.delete(sent_ids_key(flow, state, shard))


async def delete_batch_files(flow: Flow, batch: BatchRun) -> None:
    """Delete every Bailian file the run's shards made or got (already gone counts as deleted)."""
    for shard in batch.shards:
        for file_id in (shard.file_id, shard.output_file_id, shard.error_file_id):
            if file_id:
                await _delete_compat_file(flow, file_id)


async def _delete_compat_file(flow: Flow, file_id: str) -> None:
    # Gone already (an earlier pass of the same cancel, a collect) counts as deleted: a 404 here must not stall the
    # cancel for ever.
    with contextlib.suppress(NotFoundError):
        await flow.client.compat_files.delete(file_id)


async def cancel_batches(flow: Flow, batch: BatchRun) -> None:
    """Ask Bailian to stop every shard in flight, then delete the run's files (canceled whatever it answers)."""
    for shard in batch.in_flight():
        assert shard.batch_id is not None
        try:
            seen = await flow.client.batches.cancel(shard.batch_id)
        except BailianError as exc:
            # A batch that already ended cannot be cancelled (or is gone): the run stops all the same.
            log.info("batch %s: cancel refused (%s)", shard.batch_id, type(exc).__name__)
            try:
                seen = await flow.client.batches.get(shard.batch_id)
            except NotFoundError:
                continue
        # One that ended before the cancel reached it has answer files the plan does not record yet.
        for file_id in (seen.output_file_id, seen.error_file_id):
            if file_id:
                await _delete_compat_file(flow, file_id)
    await delete_batch_files(flow, batch)


async def stop_batches(flow: Flow, state: RunState, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Before a sweep of the whole run (`KindSpec` hook `stop`): cancel the shards the plan records, then add what
    the plan may not record (a shard's file or batch whose act died before recording it), found by tag; files go
    with the other files, in the final sweep."""
    await cancel_batches(flow, plan_of(state))
    return (*kinds, "batch", *(("batch-file",) if "file" in kinds else ()))
