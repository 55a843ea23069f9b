"""Reading a run and committing its next state: create-only writes, whoever creates first wins."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from bailian_flow.client.errors import APIConnectionError, APIStatusError, ConflictError, NotFoundError, RateLimitError
from bailian_flow.pipeline.runtime import Flow, utc_now
from bailian_flow.pipeline.state import RunError, RunState, Stage

if TYPE_CHECKING:
    from bailian_flow.runlog import RunEntry

log = logging.getLogger("bailian_flow.pipeline")

# What a step tells the loop: re-read and go on, or nothing more to do now.
Outcome = Literal["again", "stop"]
T = TypeVar("T")


@dataclass(frozen=True)
class Current:
    """The newest entry of a run's log, parsed."""

    seq: int
    state: RunState
    at: datetime
    writer: str

    def age(self) -> float:
        return (utc_now() - self.at).total_seconds()


def _parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def current_of(entry: RunEntry) -> Current:
    return Current(
        seq=entry.seq,
        state=RunState.model_validate({**entry.state, "seq": entry.seq}),
        at=_parse_at(entry.at),
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
    state = await commit(flow, current, stage, changed, claims=claims, **updates)
    if state is None:
        return None
    return Current(seq=current.seq + 1, state=state, at=utc_now(), writer=flow.writer)


def may_exist(current: Current) -> bool:
    """Whether an earlier claim of this intent (in this attempt) may have made the resource already."""
    return current.state.claims.get(current.state.stage, 0) > 1


def server_fault(exc: APIStatusError) -> bool:
    """A fault on Bailian's side: worth FC's retries, not a verdict on the run's input."""
    return exc.status is None or exc.status >= 500


def api_error(exc: APIStatusError, doing: str) -> RunError:
    return RunError(
        reason=f"{doing}: Bailian answered {exc.status} {exc.code}: {exc.message}",
        code=exc.code,
        retryable=isinstance(exc, RateLimitError) or server_fault(exc),
    )


async def fetch_or_fail(flow: Flow, current: Current, fetch: Callable[[], Awaitable[T]], what: str) -> T | None:
    """Read the Bailian resource a run follows; a resource gone from under it fails the run (None)."""
    try:
        return await fetch()
    except NotFoundError:
        await fail(flow, current, RunError(reason=f"{what} no longer exists", code="NotFound"))
        return None


async def create_or_find(
    flow: Flow,
    current: Current,
    *,
    create: Callable[[], Awaitable[T]],
    find: Callable[[], Awaitable[T | None]],
    doing: str,
    conflict_may_be_ours: bool = False,
) -> T | None:
    """Make a resource exactly once under the claimed intent `current`; None when the run was failed instead.

    The resource is looked up by its deterministic name first when an earlier claim may have made it, and again
    when the create's outcome is unknown (the connection dropped after the request may have been processed, or a
    409 on a name only this run uses). Bailian's 5xx escape for FC to retry; other refusals fail the run.
    """
    if may_exist(current) and (found := await find()) is not None:
        return found
    try:
        return await create()
    except APIConnectionError as exc:
        if exc.maybe_processed and (found := await find()) is not None:
            return found
        raise
    except APIStatusError as exc:
        if isinstance(exc, ConflictError) and conflict_may_be_ours and (found := await find()) is not None:
            return found
        if server_fault(exc):
            raise
        await fail(flow, current, api_error(exc, doing))
        return None


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


async def fail(
    flow: Flow, current: Current, error: RunError, changed: str | None = None, **updates: Any
) -> RunState | None:
    return await commit(flow, current, "failed", changed or f"failed: {error.reason}", error=error, **updates)


async def _write(flow: Flow, seq: int, state: RunState, changed: str, event: str | None = None) -> RunState | None:
    state = state.model_copy(update={"seq": seq})
    won = await flow.runs.append(
        state.run_id, seq, state.stage, state.model_dump(mode="json"), changed=changed, writer=flow.writer
    )
    if not won:
        log.info("run %s: seq %d already written by another delivery", state.run_id, seq)
        return None
    log.info("run %s: #%d %s (%s)", state.run_id, seq, state.stage, changed)
    if state.terminal:
        await settle_marker(flow, state.run_id)
    # Only the winner notifies, and the message id is stable, so a receiver can dedupe a repeated send.
    await flow.notifier.send(
        event or f"run.{state.stage}",
        {"changed": changed, "seq": seq, **state.public()},
        msg_id=f"{state.run_id}-{seq}",
    )
    return state
