"""What every log line of an invocation carries (`run_id`, `kind`, `stage`, `function`, `request_id`), set as the
code goes with `bind`, and what the invocation counts for its summary line (`count`).

Context variables, so concurrent runs in one tick (asyncio tasks copy the context they start in) each keep their
own run id, and nothing is passed through the pipeline's signatures.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# The fields `bind` knows; a JSON line always has them (null when unknown), so a log query can rely on them.
CONTEXT_FIELDS = ("run_id", "kind", "stage", "function", "request_id")

_bound: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar("bailian_flow_log", default=None)
_tally: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("bailian_flow_tally", default=None)


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Add fields to every log line written inside the block (None removes one); restored on exit."""
    merged = {**(_bound.get() or {}), **fields}
    token = _bound.set({key: value for key, value in merged.items() if value is not None})
    try:
        yield
    finally:
        _bound.reset(token)


def bound() -> Mapping[str, object]:
    return _bound.get() or {}


@contextmanager
def tallying() -> Iterator[dict[str, int]]:
    """Counters for one invocation's summary line. One dict shared by reference: `asyncio.run` copies the context,
    and an increment made inside its tasks must still reach the summary written outside."""
    tally: dict[str, int] = {}
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def count(**numbers: int) -> None:
    """Add to the current invocation's counters (e.g. `count(bailian_calls=3, oss_reads=12)`); a no-op outside one."""
    tally = _tally.get()
    if tally is None:
        return
    for name, number in numbers.items():
        tally[name] = tally.get(name, 0) + int(number)
