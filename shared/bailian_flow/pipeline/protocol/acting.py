"""Acting on Bailian under a claimed intent: make a resource exactly once, read one a run follows, and turn each
answer into what the run does next (retried by FC, released, adopted, or failed naming what was being done)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bailian_flow.client.errors import (
    APIConnectionError,
    APIStatusError,
    ConflictError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
)
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError
from bailian_flow.pipeline.protocol.transitions import Current, fail, generation, never_processed, release

T = TypeVar("T")


def server_fault(exc: APIStatusError) -> bool:
    """A fault on Bailian's side: worth FC's retries, not a verdict on the run's input."""
    return exc.status is None or exc.status >= 500


def api_error(exc: APIStatusError, doing: str) -> RunError:
    return RunError(
        reason=f"{doing}: Bailian answered {exc.status} {exc.code}: {exc.message}",
        code=exc.code,
        retryable=isinstance(exc, RateLimitError) or server_fault(exc),
    )


async def refuse_or_raise(flow: Flow, current: Current, exc: APIStatusError, doing: str, subject: str | None) -> None:
    """A status answer to a claimed act: a server fault or a throttle is raised for FC to retry (the intent released
    first when Bailian certainly did not act); any other answer is the service's verdict and fails the run, naming
    what was being done and its `subject` object."""
    if server_fault(exc) or isinstance(exc, RateLimitError):
        if never_processed(exc):
            await release(flow, current, f"{current.state.stage}: Bailian answered {exc.status} {exc.code}")
        raise exc
    await fail(flow, current, api_error(exc, doing).model_copy(update={"object": subject}))


async def fetch_or_fail(
    flow: Flow, current: Current, fetch: Callable[[], Awaitable[T]], what: str, seen_as: str | None = None
) -> T | None:
    """Read the Bailian resource a run follows; a resource gone from under it fails the run (None).

    `seen_as` names it in `flow.seen`: when the timer already listed it this tick, that copy is used.
    """
    if seen_as is not None and seen_as in flow.seen:
        seen: T = flow.seen[seen_as]
        return seen
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
    find: Callable[[int | None], Awaitable[T | None]],
    doing: str,
    conflict_may_be_ours: bool = False,
) -> T | None:
    """Make a resource exactly once under the claimed intent `current`; None when the run was failed instead.

    `find(generation)` looks the resource up by its deterministic name: any generation of this attempt (None)
    when an earlier claim may have made it (adopting what a dead actor left), only our own when our create's
    outcome is unknown (the connection dropped after the request may have been processed, or a 409 on a name only
    this run uses). A create that Bailian certainly did not process releases the intent; one that it may have
    processed but a lagging list does not show yet keeps it, for a re-claim after the lease to find. Bailian's
    5xx escape for FC to retry; a full quota escapes for the caller to queue the run (see admission); other
    refusals fail the run.
    """
    own = generation(current)
    if own > 1 and (found := await find(None)) is not None:
        return found
    try:
        return await create()
    except APIConnectionError as exc:
        if exc.maybe_processed and (found := await find(own)) is not None:
            return found
        if never_processed(exc):
            await release(flow, current, f"{doing}: {exc}")
        raise
    except QuotaExceededError:
        raise
    except APIStatusError as exc:
        if isinstance(exc, ConflictError) and conflict_may_be_ours and (found := await find(own)) is not None:
            return found
        if server_fault(exc):
            if never_processed(exc):
                await release(flow, current, f"{doing}: Bailian answered {exc.status} {exc.code}")
            raise
        await fail(flow, current, api_error(exc, doing))
        return None
