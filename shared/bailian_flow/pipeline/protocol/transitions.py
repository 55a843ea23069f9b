"""Reading a run and committing its next state: create-only writes, whoever creates first wins."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from bailian_flow import obs
from bailian_flow.client.errors import (
    APIConnectionError,
    APIStatusError,
)
from bailian_flow.pipeline.protocol import cleanup
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.kinds import polled, state_model
from bailian_flow.pipeline.protocol.runtime import Flow, parse_iso_z, utc_now
from bailian_flow.pipeline.protocol.state import RunError, RunState, Stage
from bailian_flow.runlog import run_id_for

if TYPE_CHECKING:
    from bailian_flow.runlog import RunEntry

log = logging.getLogger("bailian_flow.pipeline")

# What a step tells the loop: re-read and go on, or nothing more to do now.
Outcome = Literal["again", "stop"]
T = TypeVar("T")
# A result computed on the newest state: the fields to commit, or None when the result no longer applies there.
Apply = Callable[[RunState], dict[str, Any] | None]
# How often an actor re-reads and retries the commit of its result while the run still waits at its intent.
RECORD_TRIES = 8


@dataclass(frozen=True)
class Current:
    """The newest entry of a run's log, parsed."""

    seq: int
    state: RunState
    at: datetime
    writer: str

    def age(self) -> float:
        return (utc_now() - self.at).total_seconds()

    def lease_over(self, flow: Flow) -> bool:
        """Whether the actor of this entry's intent has lost its lease: older than the lease, or written before the
        process that ran every actor died (`BAILIAN_FLOW_ACTORS_DEAD_BEFORE`, set by `bailian-flow dev` on a restart;
        never on FC, where an actor's death cannot be seen)."""
        return flow.settings.lease_over(self.age(), self.at)


def current_of(entry: RunEntry) -> Current:
    return Current(
        seq=entry.seq,
        state=state_model(str(entry.state.get("kind", "fine-tune"))).model_validate({**entry.state, "seq": entry.seq}),
        at=parse_iso_z(entry.at),
        writer=entry.writer,
    )


async def load(flow: Flow, run_id: str) -> Current | None:
    entry = await flow.runs.latest(run_id)
    return None if entry is None else current_of(entry)


async def commit(
    flow: Flow, current: Current, stage: Stage, changed: str, *, event: str | None = None, **updates: Any
) -> RunState | None:
    """Write the run's next entry. None means another delivery wrote that sequence number first: re-read.

    `event` names the notification when it is not the stage's own (`run.<stage>`), e.g. `run.undeployed`.
    """
    if "redrives" not in updates and stage != current.state.stage and stage in polled():
        # Reaching a polled stage is progress: the re-drives of the stages before it do not count against the next.
        updates["redrives"] = 0
    state = current.state.model_copy(update={"stage": stage, **updates})
    revived = current.state.terminal and not state.terminal
    if revived:
        # A retried run must be on the timer's list again before its first event can need polling.
        await flow.runs.mark_active(state.run_id)
    written = await _write(flow, current.seq + 1, state, changed, event=event)
    if written is not None and revived:
        # Again: a tick that saw the run still terminal may have cleared the marker meanwhile.
        await flow.runs.mark_active(state.run_id)
    return written


async def claim(flow: Flow, current: Current, stage: Stage, changed: str, **updates: Any) -> Current | None:
    """Write an intent; the returned Current is the claimed entry, None when another delivery won."""
    claims = dict(current.state.claims)
    claims[stage] = claims.get(stage, 0) + 1
    state = await commit(flow, current, stage, changed, claims=claims, released=False, **updates)
    if state is None:
        return None
    return Current(seq=current.seq + 1, state=state, at=utc_now(), writer=flow.writer)


def generation(current: Current) -> int:
    """Which claim of its intent (in this attempt) `current` is: the resource it makes is named after it."""
    return max(current.state.claims.get(current.state.stage, 1), 1)


def may_exist(current: Current) -> bool:
    """Whether an earlier claim of this intent (in this attempt) may have made the resource already."""
    return generation(current) > 1


def never_processed(exc: Exception) -> bool:
    """Whether Bailian certainly did not act on the request: nothing sent, or a refusal that is an answer.

    A 500, 502 or 504 may come from a gateway whose backend acted anyway; a connection that broke after the
    request was sent may have been processed too.
    """
    if isinstance(exc, APIConnectionError):
        return not exc.maybe_processed
    if isinstance(exc, APIStatusError):
        return exc.status is not None and exc.status not in (500, 502, 504)
    return False


async def release(flow: Flow, claimed: Current, why: str) -> None:
    """Say that the claimed act did not happen, so that the next delivery re-claims at once (no lease to wait).

    Written only on top of our own claim: if anything else came after it, that writer decides.
    """
    stage = claimed.state.stage
    await commit(flow, claimed, stage, f"released {stage}: {why}", released=True)


def _same_intent(latest: Current, claimed: Current) -> bool:
    return (latest.state.stage, latest.state.attempt, latest.state.intent_subject()) == (
        claimed.state.stage,
        claimed.state.attempt,
        claimed.state.intent_subject(),
    )


async def record(
    flow: Flow,
    claimed: Current,
    made: list[Made],
    stage: Stage,
    changed: str,
    *,
    apply: Apply | None = None,
    **updates: Any,
) -> RunState | None:
    """Commit what the act claimed by `claimed` made; None when the run went elsewhere (and `made` was undone).

    Fenced on the log, not on time or identity: a result is committed only on top of an entry that still waits
    at the same intent (stage, attempt and, for a batch, shard) of the same attempt (ours, a re-claim's, or a
    release). Whoever commits first wins; an actor that finds the run moved on (another actor's result,
    `canceling`, a failure) undoes what it made unless that very resource is what the run now records (a
    re-claimer adopted it by name). Once a run leaves an intent it never returns to it in the same attempt, so
    nothing undone here can be adopted later (a batch shard's submission recurs after a quota wait: its `apply`
    refuses a shard that is submitted already, and the loser's batch is undone).

    `apply` computes the fields from the newest entry instead (with `updates` on top), for a result that must not
    be written from the claim's copy: a batch shard's result lands on the plan as others left it since. It says
    None when the result no longer applies (another delivery recorded it), which counts as the run moving on.
    """
    run_id = claimed.state.run_id
    latest: Current | None = claimed
    for _ in range(RECORD_TRIES):
        if latest is None or not _same_intent(latest, claimed):
            break
        fields = {} if apply is None else apply(latest.state)
        if fields is None:
            break
        written = await commit(flow, latest, stage, changed, **{**fields, **updates})
        if written is not None:
            if may_exist(claimed):
                # Earlier claims of this intent may have made a resource each: the one recorded stays.
                kinds = {item.kind for item in made} - cleanup.whole_run_resources()
                acts = await cleanup.sweep(flow, written, keep=made, kinds=kinds)
                if acts:
                    await note(flow, run_id, f"compensated: {'; '.join(acts)} (made by earlier claims)")
            return written
        latest = await load(flow, run_id)
    else:
        # Still at the intent after many rivals: leave the resource to the next claim, which adopts it by name.
        log.warning("run %s: could not record %s; left for a re-claim", run_id, ", ".join(map(str, made)))
        return None
    if latest is None:
        return None
    lost = [item for item in made if not item.recorded_in(latest.state)]
    if lost:
        acts = [await cleanup.undo(flow, item) for item in lost]
        why = f"run moved on to {latest.state.stage} at #{latest.seq} before it was recorded"
        await note(flow, run_id, f"compensated: {'; '.join(acts)} ({why})")
    return None


async def note(flow: Flow, run_id: str, changed: str, tries: int = 3) -> bool:
    """Add a history entry that changes nothing but says what was done (no stage marker, no notification)."""
    for _ in range(tries):
        latest = await flow.runs.latest(run_id)
        if latest is None:
            return False
        won = await flow.runs.append(
            run_id, latest.seq + 1, latest.stage, latest.state, changed=changed, writer=flow.writer, publish=False
        )
        if won:
            log.info("run %s: #%d note: %s", run_id, latest.seq + 1, changed)
            return True
    log.warning("run %s: history note lost to busier writers: %s", run_id, changed)
    return False


def superseded_error(state: RunState, newer_etag: str | None) -> RunError:
    """The run's version of its object is gone (a run is bound to one version, invariant I7): name the run of the
    version that replaced it."""
    key = state.source.key
    if newer_etag is None or state.source.bucket is None or key is None:
        reason = f"object {key} was overwritten and the version this run was opened for is gone"
    else:
        newer = run_id_for(state.source.bucket, key, newer_etag)
        reason = f"superseded by run {newer}: object {key} was overwritten by a newer version"
    return RunError(reason=reason, object=key, code="Superseded")


async def create(flow: Flow, state: RunState, changed: str) -> RunState | None:
    """Write a run's first entry (sequence 0)."""
    # Indexed and marked active before the commit: nothing a run needs to be found again is written after the
    # commit that needs it, so a crash or a refused write in between leaves no run that exists unlisted or
    # unpolled. A delivery that then loses the race leaves a second index entry, which listing folds away, and a
    # marker the winner's run would have had anyway (a terminal winner's is cleared by the timer's next visit).
    await flow.runs.add_to_index(state.run_id, utc_now())
    if not state.terminal:
        await flow.runs.mark_active(state.run_id)
    return await _write(flow, 0, state, changed)


async def settle_marker(flow: Flow, run_id: str) -> bool:
    """Clear a finished run's active marker; True when it stays cleared.

    The clear is re-checked against the log: a retry may revive the run between our terminal read and the DELETE
    (its own `mark_active` is a no-op while the old marker still exists), so after deleting we read the newest
    entry again and put the marker back for a run that is no longer terminal.
    """
    await flow.runs.clear_active(run_id)
    latest = await load(flow, run_id)
    if latest is not None and not latest.state.terminal:
        await flow.runs.mark_active(run_id)
        return False
    return True


# The ending stages (not terminal, visible) and the terminal stage each ends in once nothing the run made is left.
ENDING: dict[str, Stage] = {"canceling": "canceled", "cleaning-up": "failed"}


async def fail(
    flow: Flow, current: Current, error: RunError, changed: str | None = None, **updates: Any
) -> RunState | None:
    """Fail the run through its end of life: `cleaning-up` (the error recorded at once), then `failed` once what
    it made is undone; None when another writer came first."""
    changed = changed or f"failed: {error.reason}"
    ending = await begin_ending(flow, current, "cleaning-up", changed, error=error, **updates)
    if ending is None:
        return None
    return await end_of_life(flow, ending) or ending.state


def ending_key(run_id: str) -> str:
    from bailian_flow.pipeline.protocol.layout import ENDING_PREFIX

    return f"{ENDING_PREFIX}{run_id}"


async def begin_ending(flow: Flow, current: Current, stage: Stage, changed: str, **updates: Any) -> Current | None:
    """Commit an ending stage on top of `current` (fencing out every act in flight); None when another writer won.

    Its `ending/` marker is written first, so that the timer looks at the run every tick until its end lands,
    whatever its hint remembers (a crash after this commit loses nothing).
    """
    await flow.store.put(ending_key(current.state.run_id), b"", content_type="text/plain")
    written = await commit(flow, current, stage, changed, **updates)
    if written is None:
        return None
    return Current(seq=current.seq + 1, state=written, at=utc_now(), writer=flow.writer)


async def end_of_life(flow: Flow, current: Current) -> RunState | None:
    """One try at ending a run at an ending stage: undo what it made (by its records and by name), then commit
    the terminal stage. Anything Bailian refuses for now (an import still running) or a call that failed keeps
    the run where it is, with this try in its history; the timer tries again every tick. None: not ended now."""
    state = current.state
    final = ENDING[state.stage]
    swept = await cleanup.undo_all(flow, state, keep=cleanup.kept(state))
    if swept.pending:
        await note(flow, state.run_id, f"{state.stage}: {'; '.join(swept.acts)}; tried again at the next tick")
        return None
    latest = await load(flow, state.run_id)
    if latest is None or latest.state.stage != state.stage:
        return None
    files = [made.id for made in swept.undone if made.kind == "file"]
    error = latest.state.error
    acts = "; ".join(swept.acts) if swept.acts else "nothing on Bailian to undo"
    changed = f"failed: {error.reason}; {acts}" if final == "failed" and error is not None else f"{final}: {acts}"
    written = await commit(
        flow,
        latest,
        final,
        changed,
        files_deleted=sorted({*latest.state.files_deleted, *files}),
        undone=sorted({*latest.state.undone, *(f"{made.kind}:{made.id}" for made in swept.undone)}),
    )
    if written is not None:
        await flow.store.delete(ending_key(state.run_id))
    return written


async def _write(flow: Flow, seq: int, state: RunState, changed: str, event: str | None = None) -> RunState | None:
    state = state.model_copy(update={"seq": seq})
    won = await flow.runs.append(
        state.run_id, seq, state.stage, state.model_dump(mode="json"), changed=changed, writer=flow.writer
    )
    if not won:
        log.info("run %s: seq %d already written by another delivery", state.run_id, seq)
        return None
    fields: dict[str, Any] = {"transition": True, "seq": seq, "changed": changed}
    failed = state.stage == "failed"
    if failed and state.error is not None:
        fields["code"] = state.error.code
    with obs.bind(run_id=state.run_id, kind=state.kind, stage=state.stage):
        # The README's alert and stage queries read these lines: `"stage": "failed"` at WARNING.
        log.log(
            logging.WARNING if failed else logging.INFO,
            "run %s: #%d %s (%s)",
            state.run_id,
            seq,
            state.stage,
            changed,
            extra={"fields": fields},
        )
    if state.terminal:
        await settle_marker(flow, state.run_id)
    # Only the winner notifies, and the message id is stable, so a receiver can dedupe a repeated send.
    await flow.notifier.send(
        event or f"run.{state.stage}",
        {"changed": changed, "seq": seq, **state.public()},
        msg_id=f"{state.run_id}-{seq}",
    )
    return state
