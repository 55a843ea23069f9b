"""Auto-pagination: page-number pages (native lists) and `after` cursors (compatible lists)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["iterate_cursor", "iterate_pages"]

T = TypeVar("T")


async def iterate_pages(
    fetch: Callable[[int], Awaitable[tuple[Sequence[T], int, int]]], *, start: int = 1
) -> AsyncIterator[T]:
    """Yield every item of a page-number listing. `fetch(page_no)` returns (items, total, page_size).

    Stops on an empty page or once `total` is covered, whichever comes first, so a total that changes while we
    read (a job created meanwhile) cannot make it loop forever.
    """
    page_no = start
    while True:
        items, total, page_size = await fetch(page_no)
        for item in items:
            yield item
        if not items or page_no * max(page_size, 1) >= total:
            return
        page_no += 1


async def iterate_cursor(
    fetch: Callable[[str | None], Awaitable[tuple[Sequence[T], bool, str | None]]],
) -> AsyncIterator[T]:
    """Yield every item of a cursor listing. `fetch(after)` returns (items, has_more, last_id)."""
    after: str | None = None
    while True:
        items, has_more, last_id = await fetch(after)
        for item in items:
            yield item
        if not items or not has_more or not last_id or last_id == after:
            return
        after = last_id
