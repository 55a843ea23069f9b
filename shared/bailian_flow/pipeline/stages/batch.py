"""Batch inference: received → batch-planning → batch-running ⇄ batch-ready → ... → batch-merging → done.

`batch-running` is what the timer (and a finish callback) polls: one GET per shard in flight. When there is work
(a shard to submit, a finished shard to collect, all shards in and results to merge) the poll writes
`batch-ready`, whose stage marker hands the work to on_upload, the function with the time and memory for it.
Each unit of work is an intent (`batch-submitting`, `batch-collecting`, `batch-merging`) naming its shard in
`batch.current`, so a delivery that died mid-way is resumed and finds what it made by the shard's tag.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bailian_flow.client.errors import BailianError, NotFoundError, RateLimitError
from bailian_flow.pipeline import reconcile
from bailian_flow.pipeline.batch_lines import plan_shards, shard_body
from bailian_flow.pipeline.batch_results import ERROR, OUTPUT, collect_shard, finished_ids, merged, results_key, summary
from bailian_flow.pipeline.batch_state import (
    FINISHED_STATUSES,
    BatchRun,
    Shard,
    callback_token,
    shard_name,
)
from bailian_flow.pipeline.runtime import Flow, utc_now
from bailian_flow.pipeline.state import RunError, Stage
from bailian_flow.pipeline.transitions import Current, Outcome, claim, commit, create_or_find, fail, load
from bailian_flow.store import ObjectChangedError, ObjectNotFoundError
from bailian_flow.validate import DatasetError

log = logging.getLogger("bailian_flow.pipeline")

Act = Callable[[Flow, Current], Awaitable[None]]

# Bailian runs at most this many batches at once per account; a run never holds more.
MAX_PARALLEL = 2
MAX_PENDING_PER_MODEL = 10_000
# After a quota refusal, wait this long before trying the next submission.
QUOTA_RETRY_SECONDS = 30.0
# Units of work one on_upload invocation does before leaving the rest to the next hand-over.
MAX_WORK_PER_DELIVERY = 8


class QuotaWait(Exception):
    """Bailian refused a batch for a quota: the shard waits, the run does not fail."""


def _now() -> str:
    return utc_now().isoformat().replace("+00:00", "Z")


def _batch(current: Current) -> BatchRun:
    batch = current.state.batch
    assert batch is not None, f"run {current.state.run_id} has no batch plan"
    return batch


def _without_claim(current: Current, stage: str) -> dict[str, int]:
    """The claim counts once an intent is done: the next shard's claim of it starts afresh."""
    return {name: count for name, count in current.state.claims.items() if name != stage}


# -- planning ---------------------------------------------------------------------------------------------------


async def step_batch_received(flow: Flow, current: Current) -> Outcome:
    key = current.state.source.key
    claimed = await claim(flow, current, "batch-planning", f"validating and planning shards of {key}")
    if claimed is not None:
        await RESUME_BATCH["batch-planning"](flow, claimed)
        await work(flow, current.state.run_id)
    return "again"


async def act_plan(flow: Flow, current: Current) -> None:
    state = current.state
    key = state.source.key
    assert key is not None
    batch = _batch(current)
    try:
        plan = await plan_shards(
            flow.store,
            key,
            batch.settings,
            max_lines=flow.settings.batch_shard_lines,
            max_bytes=flow.settings.batch_shard_bytes,
            etag=state.source.etag,
        )
    except DatasetError as exc:
        error = RunError(reason=str(exc), object=exc.object_name, line=exc.line, field=exc.field, code="InvalidBatch")
        await fail(flow, current, error)
        return
    except ObjectNotFoundError:
        await fail(flow, current, RunError(reason=f"object {key} does not exist", object=key, code="SourceMissing"))
        return
    planned = batch.model_copy(update={"total": plan.total, "shards": plan.shards, "planned_at": _now()})
    await commit(
        flow,
        current,
        "batch-running",
        f"{plan.total} requests in {len(plan.shards)} shards",
        batch=planned,
        records=plan.total,
        claims=_without_claim(current, "batch-planning"),
    )


# -- polling (timer, callbacks) ---------------------------------------------------------------------------------


async def _refresh(flow: Flow, batch: BatchRun) -> tuple[BatchRun, list[str]]:
    """The batch plan with every in-flight shard's status read from Bailian; and what changed."""
    shards: list[Shard] = []
    changes: list[str] = []
    for shard in batch.shards:
        if shard.batch_id and shard.status not in FINISHED_STATUSES:
            try:
                found = await flow.client.batches.get(shard.batch_id)
            except NotFoundError:
                shard = shard.model_copy(update={"status": "failed", "finished_at": _now()})
                changes.append(f"shard {shard.index}: batch {shard.batch_id} is gone")
            else:
                if found.status != shard.status:
                    update: dict[str, Any] = {
                        "status": found.status,
                        "output_file_id": found.output_file_id,
                        "error_file_id": found.error_file_id,
                    }
                    if found.status in FINISHED_STATUSES:
                        update["finished_at"] = _now()
                    shard = shard.model_copy(update=update)
                    changes.append(f"shard {shard.index} {found.status}")
        shards.append(shard)
    return batch.model_copy(update={"shards": shards}), changes


def _admissible(batch: BatchRun, shard: Shard) -> bool:
    flying = batch.in_flight()
    if len(flying) >= MAX_PARALLEL:
        return False
    pending = sum(other.lines for other in flying if other.model == shard.model)
    # A shard larger than the per-model allowance still goes, alone.
    return pending == 0 or pending + shard.lines <= MAX_PENDING_PER_MODEL


def next_action(batch: BatchRun, current: Current) -> tuple[Stage, int | None] | None:
    for shard in batch.shards:
        if shard.status in FINISHED_STATUSES and shard.part_key is None:
            return "batch-collecting", shard.index
    planned = [shard for shard in batch.shards if shard.status == "planned"]
    if not planned and all(shard.part_key for shard in batch.shards):
        return "batch-merging", None
    quota_fresh = batch.waiting is not None and current.age() < QUOTA_RETRY_SECONDS
    for shard in planned:
        if not quota_fresh and _admissible(batch, shard):
            return "batch-submitting", shard.index
    return None


async def poll_batch_run(flow: Flow, current: Current) -> Outcome:
    """The timer's (and a callback's) look at a batch run: statuses only; work goes to on_upload."""
    batch, changes = await _refresh(flow, _batch(current))
    if next_action(batch, current) is not None:
        changed = "; ".join(changes) or "work to do"
        await commit(flow, current, "batch-ready", f"{changed}: handing over", batch=batch)
    elif changes:
        await commit(flow, current, "batch-running", "; ".join(changes), batch=batch)
    return "stop"


# -- work (on_upload) -------------------------------------------------------------------------------------------


async def step_batch_ready(flow: Flow, current: Current) -> Outcome:
    done = await work(flow, current.state.run_id)
    latest = await load(flow, current.state.run_id)
    if done == 0 and latest is not None and latest.seq == current.seq:
        # Nothing could be done after all (a quota): back to polling.
        await commit(flow, current, "batch-running", "nothing to do yet")
    return "stop"


async def work(flow: Flow, run_id: str) -> int:
    """Do the run's pending units of work one after the other; how many were done."""
    done = 0
    longest = 0.0
    for _ in range(MAX_WORK_PER_DELIVERY):
        if done and flow.remaining() < 2 * longest:
            break  # another unit like the longest so far might not finish: the next hand-over takes it
        started = time.monotonic()
        current = await load(flow, run_id)
        if current is None or current.state.stage not in ("batch-running", "batch-ready"):
            break
        batch, changes = await _refresh(flow, _batch(current))
        action = next_action(batch, current)
        if action is None:
            if changes:
                await commit(flow, current, "batch-running", "; ".join(changes), batch=batch)
            break
        stage, index = action
        what = "merging results" if index is None else f"shard {index}"
        claimed = await claim(
            flow,
            current,
            stage,
            f"{stage.removeprefix('batch-')} {what}",
            batch=batch.model_copy(update={"current": index}),
        )
        if claimed is None:
            break
        await RESUME_BATCH[stage](flow, claimed)
        done += 1
        longest = max(longest, time.monotonic() - started)
    return done


def _mixed(batch: BatchRun) -> bool:
    return len({shard.model for shard in batch.shards}) > 1


async def act_submit(flow: Flow, current: Current) -> None:
    state = current.state
    batch = _batch(current)
    assert batch.current is not None and state.source.key is not None
    shard = batch.shards[batch.current]
    tag = shard_name(state.run_id, state.attempt, shard)
    key = state.source.key
    try:
        file_id = shard.file_id or await _shard_file(flow, current, key, batch, shard, tag)
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
        waiting = batch.model_copy(
            update={"current": None, "waiting": str(exc), "shards": _replace(batch, shard.index, file_id=file_id)}
        )
        await commit(
            flow,
            current,
            "batch-running",
            f"shard {shard.index} waits: {exc}",
            batch=waiting,
            claims=_without_claim(current, "batch-submitting"),
        )
        return
    if found is None:
        return
    shards = _replace(batch, shard.index, file_id=file_id, batch_id=found.id, status=found.status, submitted_at=_now())
    await commit(
        flow,
        current,
        "batch-running",
        f"shard {shard.index} submitted as {found.id}",
        batch=batch.model_copy(update={"current": None, "waiting": None, "shards": shards}),
        claims=_without_claim(current, "batch-submitting"),
    )


def _replace(batch: BatchRun, index: int, **update: Any) -> list[Shard]:
    return [shard.model_copy(update=update) if shard.index == index else shard for shard in batch.shards]


async def _shard_file(flow: Flow, current: Current, key: str, batch: BatchRun, shard: Shard, tag: str) -> str | None:
    skip = await finished_ids(flow, batch, shard.root) if shard.generation > 1 else frozenset()
    filename = f"{tag}.jsonl"
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
            ),
            purpose="batch",
            filename=filename,
        ),
        find=lambda _generation: reconcile.find_compat_file(flow, filename),
        doing=f"uploading shard {shard.index}",
    )
    return None if uploaded is None else uploaded.id


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
    except RateLimitError as exc:
        raise QuotaWait(f"Bailian refused another batch ({exc.code}); waiting for a slot") from None


async def act_collect(flow: Flow, current: Current) -> None:
    state = current.state
    batch = _batch(current)
    assert batch.current is not None and state.source.key is not None
    shard = batch.shards[batch.current]
    resubmit = shard.status != "completed" and shard.generation <= batch.settings.resubmit_limit
    part_key = results_key(flow, state.source.key, state.run_id, f"_parts/s{shard.root:05d}-g{shard.generation}.jsonl")
    got = await collect_shard(flow, state.source.key, batch, shard, part_key, resubmit=resubmit, etag=state.source.etag)
    shards = _replace(
        batch,
        shard.index,
        part_key=part_key,
        completed=got.completed,
        failed=got.failed,
        input_tokens=got.input_tokens,
        output_tokens=got.output_tokens,
    )
    changed = f"shard {shard.index} collected: {got.completed} answered, {got.failed} failed"
    if got.unfinished:
        again = shard.model_copy(
            update={
                "index": len(shards),
                "generation": shard.generation + 1,
                "lines": len(got.unfinished),
                "status": "planned",
                "file_id": None,
                "batch_id": None,
                "output_file_id": None,
                "error_file_id": None,
                "submitted_at": None,
                "finished_at": None,
            }
        )
        shards.append(again)
        changed += f"; {len(got.unfinished)} unfinished lines resubmitted as shard {again.index}"
    await commit(
        flow,
        current,
        "batch-running",
        changed,
        batch=batch.model_copy(update={"current": None, "shards": shards}),
        claims=_without_claim(current, "batch-collecting"),
    )


async def act_merge(flow: Flow, current: Current) -> None:
    state = current.state
    batch = _batch(current)
    key = state.source.key
    assert key is not None
    parts = [shard.part_key for shard in batch.shards if shard.part_key]
    for kind, name in ((OUTPUT, "output.jsonl"), (ERROR, "errors.jsonl")):
        await flow.store.put_stream(results_key(flow, key, state.run_id, name), merged(flow, parts, kind))
    finished = _now()
    report = summary(batch, state.run_id, key, finished)
    await flow.store.put(
        results_key(flow, key, state.run_id, "summary.json"),
        json.dumps(report, indent=2).encode(),
        content_type="application/json",
    )
    # The results are in the bucket: the service's copies are no longer needed.
    await delete_batch_files(flow, batch)
    written = await commit(
        flow,
        current,
        "done",
        f"results in {results_key(flow, key, state.run_id, '')}: {report['completed']} answered, "
        f"{report['failed']} failed",
        batch=batch.model_copy(update={"current": None, "results_at": finished}),
        claims=_without_claim(current, "batch-merging"),
    )
    if written is not None:
        for part in parts:
            await flow.store.delete(part)


async def delete_batch_files(flow: Flow, batch: BatchRun) -> None:
    """Delete every Bailian file the run's shards made or got (already gone counts as deleted)."""
    for shard in batch.shards:
        for file_id in (shard.file_id, shard.output_file_id, shard.error_file_id):
            if file_id:
                await flow.client.compat_files.delete(file_id)


async def cancel_batches(flow: Flow, batch: BatchRun) -> None:
    """Ask Bailian to stop every shard in flight, then delete the run's files (canceled whatever it answers)."""
    for shard in batch.in_flight():
        assert shard.batch_id is not None
        try:
            await flow.client.batches.cancel(shard.batch_id)
        except BailianError as exc:
            # A batch that already ended cannot be cancelled (or is gone): the run stops all the same.
            log.info("batch %s: cancel refused (%s)", shard.batch_id, type(exc).__name__)
    await delete_batch_files(flow, batch)


def _pinned(act: Act) -> Act:
    """An input overwritten mid-run fails the run: its answers must all come from the version it began with."""

    async def acting(flow: Flow, current: Current) -> None:
        try:
            await act(flow, current)
        except ObjectChangedError:
            key = current.state.source.key
            reason = f"object {key} was overwritten while the run read it; the new version has a run of its own"
            await fail(flow, current, RunError(reason=reason, object=key, code="Superseded"))

    return acting


RESUME_BATCH: dict[str, Act] = {
    "batch-planning": _pinned(act_plan),
    "batch-submitting": _pinned(act_submit),
    "batch-collecting": _pinned(act_collect),
    "batch-merging": _pinned(act_merge),
}
