"""Auto-pagination: page-number pages (native lists) and `after` cursors (compatible lists)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

__all__ = ["CursorPage", "iterate_cursor", "iterate_pages"]

T = TypeVar("T")


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_Identified, covariant=True)


class CursorPage(Protocol[ItemT]):
    """A compatible-mode list answer (`{"data", "last_id", "has_more"}`)."""

    @property
    def data(self) -> Sequence[ItemT]: ...

    @property
    def last_id(self) -> str | None: ...

    @property
    def has_more(self) -> bool: ...


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


async def iterate_cursor(fetch: Callable[[str | None], Awaitable[CursorPage[ItemT]]]) -> AsyncIterator[ItemT]:
    """Yield every item of a cursor listing; `fetch(after)` returns the page after that id.

    The cursor is the page's `last_id`, or its last item's id when the service leaves `last_id` out.
    """
    after: str | None = None
    while True:
        page = await fetch(after)
        items = page.data
        for item in items:
            yield item
        last_id = page.last_id or (items[-1].id if items else None)
        if not items or not page.has_more or not last_id or last_id == after:
            return
        after = last_id
