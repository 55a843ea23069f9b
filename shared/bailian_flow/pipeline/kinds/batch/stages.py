"""Batch inference: received → batch-planning → batch-running ⇄ batch-ready → ... → batch-merging → done.

`batch-running` is what the timer (and a finish callback) polls: the timer from its one list of batches per tick,
a callback with one GET per shard in flight. When there is work (a shard to submit, a finished shard to collect,
all shards in and results to merge) the poll writes `batch-ready`, whose stage marker hands the work to on_upload,
the function with the time and memory for it.
Each unit of work is an intent (`batch-submitting`, `batch-collecting`, `batch-merging`) naming its shard in
`batch.current`, so a delivery that died mid-way is resumed and finds what it made by the shard's tag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from bailian_flow.client.errors import NotFoundError
from bailian_flow.pipeline.kinds.batch.acts import (
    act_collect,
    act_merge,
    act_submit,
    batch_of,
    on_newest_plan,
    record_sent,
)
from bailian_flow.pipeline.kinds.batch.batch_lines import plan_shards
from bailian_flow.pipeline.kinds.batch.batch_state import (
    FINISHED_STATUSES,
    RUNNING_STATUSES,
    BatchRun,
    Shard,
    plan_of,
    run_of_tag,
    shard_tag,
)
from bailian_flow.pipeline.protocol import admission, bulk, reconcile
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z
from bailian_flow.pipeline.protocol.state import RunError, Stage
from bailian_flow.pipeline.protocol.transitions import (
    Current,
    Outcome,
    claim,
    commit,
    fail,
    load,
    may_exist,
    record,
)
from bailian_flow.store import ObjectChangedError, ObjectNotFoundError
from bailian_flow.validate import DatasetError

if TYPE_CHECKING:
    from bailian_flow.pipeline.kinds.batch.ahead import UploadAhead

log = logging.getLogger("bailian_flow.pipeline")

Act = Callable[[Flow, Current], Awaitable[None]]

# Bailian runs at most this many batches at once per account; a run never holds more.
MAX_PARALLEL = 2
MAX_PENDING_PER_MODEL = 10_000
# Units of work one on_upload invocation does before leaving the rest to the next hand-over.
MAX_WORK_PER_DELIVERY = 8


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
    batch = batch_of(current)
    max_lines, max_bytes = flow.settings.batch_shard_lines, flow.settings.batch_shard_bytes
    # The file of the first shard, named as its submit would name it (`acts._shard_file`).
    first_file = f"{shard_tag(state.run_id, state.attempt, root=0, generation=1)}.jsonl"
    ahead = await _upload_ahead(flow, current, batch, first_file, max_lines=max_lines, max_bytes=max_bytes)
    try:
        plan = await plan_shards(
            flow.store,
            key,
            batch.settings,
            max_lines=max_lines,
            max_bytes=max_bytes,
            etag=state.source.etag,
            ahead=ahead,
        )
        uploaded = None if ahead is None else await ahead.finish(plan.shards)
        sent = [] if ahead is None else ahead.sent
    except DatasetError as exc:
        error = RunError(reason=str(exc), object=exc.object_name, line=exc.line, field=exc.field, code="InvalidBatch")
        await fail(flow, current, error)
        return
    except ObjectNotFoundError:
        await fail(flow, current, RunError(reason=f"object {key} does not exist", object=key, code="SourceMissing"))
        return
    finally:
        if ahead is not None:
            await ahead.close()
    shards = plan.shards
    made: list[Made] = []
    if uploaded is None and may_exist(current) and len(shards) == 1 and batch.settings.model is None:
        # An earlier claim of this plan may have sent the shard's file before it died: adopt it by its name.
        uploaded = await reconcile.find_compat_file(flow, first_file)
    if uploaded is not None:
        shards = [shards[0].model_copy(update={"file_id": uploaded.id})]
        made.append(Made("batch-file", uploaded.id))
        if len(sent) == shards[0].lines:
            await record_sent(flow, state, shards[0], sent)
    planned = batch.model_copy(update={"total": plan.total, "shards": shards, "planned_at": iso_z()})
    await record(
        flow,
        current,
        made,
        "batch-running",
        f"{plan.total} requests in {len(shards)} shards" + (f"; shard 0 uploaded as {uploaded.id}" if uploaded else ""),
        apply=on_newest_plan(current, lambda _plan: planned),
        records=plan.total,
    )


async def _upload_ahead(
    flow: Flow, current: Current, batch: BatchRun, filename: str, *, max_lines: int, max_bytes: int
) -> UploadAhead | None:
    """The first shard's upload alongside the plan (`ahead.py`), when the input can be one shard sent as it is, the
    run would be submitted at once (no one waits for a batch slot before it), and no earlier claim may have sent it."""
    state = current.state
    size = state.source.size
    if batch.settings.model is not None or not size or size > max_bytes or may_exist(current):
        return None
    if await admission.must_wait(flow, state, admission.BATCHES):
        return None
    from bailian_flow.pipeline.kinds.batch.ahead import UploadAhead

    return UploadAhead(flow, filename, size, max_lines=max_lines)


# -- polling (timer, callbacks) ---------------------------------------------------------------------------------


async def _refresh(flow: Flow, batch: BatchRun) -> tuple[BatchRun, list[str]]:
    """The batch plan with every in-flight shard's status read from Bailian; and what changed.

    A shard the timer's list showed this tick (`flow.seen`) costs no call; one it does not show (created after the
    list was read, or beyond where the list stopped) is read with a GET, and only a GET says that it is gone.
    """
    shards: list[Shard] = []
    changes: list[str] = []
    for shard in batch.shards:
        if shard.batch_id and shard.status not in FINISHED_STATUSES:
            try:
                found = flow.seen.get(f"{bulk.BATCHES}:{shard.batch_id}") or await flow.client.batches.get(
                    shard.batch_id
                )
            except NotFoundError:
                shard = shard.model_copy(update={"status": "failed", "finished_at": iso_z()})
                changes.append(f"shard {shard.index}: batch {shard.batch_id} is gone")
            else:
                if found.status != shard.status:
                    update: dict[str, Any] = {
                        "status": found.status,
                        "output_file_id": found.output_file_id,
                        "error_file_id": found.error_file_id,
                    }
                    if found.status in FINISHED_STATUSES:
                        update["finished_at"] = iso_z()
                    shard = shard.model_copy(update=update)
                    changes.append(f"shard {shard.index} {found.status}")
        shards.append(shard)
    return batch.model_copy(update={"shards": shards}), changes


def _admissible(batch: BatchRun, shard: Shard, elsewhere: Mapping[str, int]) -> bool:
    flying = batch.in_flight()
    if len(flying) >= MAX_PARALLEL:
        return False
    pending = sum(other.lines for other in flying if other.model == shard.model) + elsewhere.get(shard.model, 0)
    return _fits(pending, shard.lines)


def _fits(pending: int, lines: int) -> bool:
    # A shard larger than the per-model allowance still goes, alone.
    return pending == 0 or pending + lines <= MAX_PENDING_PER_MODEL


def requests_fit(needs: Mapping[str, int], pending: Mapping[str, int]) -> bool:
    """Whether a shard of one of the models in `needs` (its requests) fits beside what `pending` holds."""
    return any(_fits(pending.get(model, 0), lines) for model, lines in needs.items())


async def waiting_requests_fit(flow: Flow, needs: Mapping[str, int], memo: dict[str, Any]) -> bool:
    """Admission's question for a batch run held back by other runs' pending requests: do they fit now? `memo` keeps
    the pass's count of pending requests per model (read once), and what each admitted run adds to it."""
    pending: dict[str, int] = memo.setdefault("pending_requests", None) or await pending_elsewhere(flow, run_id=None)
    memo["pending_requests"] = pending
    if not requests_fit(needs, pending):
        return False
    for model, lines in needs.items():
        pending[model] = pending.get(model, 0) + lines
    return True


async def pending_elsewhere(flow: Flow, run_id: str | None) -> dict[str, int]:
    """Requests per model in other runs' batches in flight (every run's for None): Bailian's limit is per model.

    Bailian's list of running batches (one listing of every running status at once, service-contract.md#C34: a
    call per status cost two more waits on the 10 QPS limiter before every submit) names their shards by tag; each
    owner's plan says the shard's model and lines (one read per owner).
    """
    owners: dict[str, set[str]] = {}
    async for found in flow.client.batches.list(status=sorted(RUNNING_STATUSES)):
        owner = run_of_tag(reconcile.batch_tag(found))
        if owner is not None and owner != run_id:
            owners.setdefault(owner, set()).add(found.id)
    pending: dict[str, int] = {}
    for owner, batch_ids in owners.items():
        current = await load(flow, owner)
        plan = None if current is None else plan_of(current.state)
        for shard in plan.shards if plan is not None else []:
            if shard.batch_id in batch_ids:
                pending[shard.model] = pending.get(shard.model, 0) + shard.lines
    return pending


def next_action(batch: BatchRun, elsewhere: Mapping[str, int] | None = None) -> tuple[Stage, int | None] | None:
    """The run's next unit of work; `elsewhere` counts other runs' pending requests per model (none when None)."""
    for shard in batch.shards:
        if shard.status in FINISHED_STATUSES and shard.part_key is None:
            return "batch-collecting", shard.index
    planned = [shard for shard in batch.shards if shard.status == "planned"]
    if not planned and all(shard.part_key for shard in batch.shards):
        return "batch-merging", None
    # A run refused a slot waits in the quota's line (stage `waiting`), not here: it comes back admitted.
    for shard in planned:
        if _admissible(batch, shard, elsewhere or {}):
            return "batch-submitting", shard.index
    return None


async def poll_batch_run(flow: Flow, current: Current) -> Outcome:
    """The timer's (and a callback's) look at a batch run: statuses only; work goes to on_upload."""
    batch, changes = await _refresh(flow, batch_of(current))
    if next_action(batch) is not None:
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
        batch, changes = await _refresh(flow, batch_of(current))
        action = next_action(batch)
        if action is not None and action[0] == "batch-submitting":
            elsewhere = await pending_elsewhere(flow, run_id)
            action = next_action(batch, elsewhere)
            if action is None and not batch.in_flight():
                # Only other runs' pending requests hold the shard back: it waits in the batches line, and its turn
                # comes when batches (those among them) end.
                planned = {shard.model for shard in batch.shards if shard.status == "planned"}
                models = ", ".join(
                    f"{lines:,} of {model}" for model, lines in sorted(elsewhere.items()) if model in planned
                )
                why = f"other runs' batches hold {models} requests; Bailian takes {MAX_PENDING_PER_MODEL:,} per model"
                needs: dict[str, int] = {}
                for shard in batch.shards:
                    if shard.status == "planned":
                        needs[shard.model] = min(needs.get(shard.model, shard.lines), shard.lines)
                await admission.wait(flow, current, admission.BATCHES, "batch-ready", needs_requests=needs, why=why)
                break
        if action is None:
            if changes:
                await commit(flow, current, "batch-running", "; ".join(changes), batch=batch)
            break
        stage, index = action
        if stage == "batch-submitting" and await admission.must_wait(flow, current.state, admission.BATCHES):
            # Other runs wait for a batch slot already: queue behind them rather than overtake.
            await admission.wait(flow, current, admission.BATCHES, "batch-ready", why="other runs wait first")
            break
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


def _pinned(act: Act) -> Act:
    """An input overwritten mid-run fails the run: its answers must all come from the version it began with."""

    async def acting(flow: Flow, current: Current) -> None:
        try:
            await act(flow, current)
        except ObjectChangedError:
            key = current.state.source.key
            reason = f"object {key} was overwritten while the run read it; the new version has a run of its own"
            # This run can never finish, and its other shards would run (and bill) on: its end of life
            # (`transitions.fail`) stops them and deletes its files before the run is `failed`.
            await fail(flow, current, RunError(reason=reason, object=key, code="Superseded"))

    return acting


# The acts the kind's intents stand for (`spec.py`), each pinned to the input's version.
resume_planning = _pinned(act_plan)
resume_submitting = _pinned(act_submit)
resume_collecting = _pinned(act_collect)
resume_merging = _pinned(act_merge)
RESUME_BATCH: dict[str, Act] = {
    "batch-planning": resume_planning,
    "batch-submitting": resume_submitting,
    "batch-collecting": resume_collecting,
    "batch-merging": resume_merging,
}
