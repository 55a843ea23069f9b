"""Cursor lists of the compatible mode (files, batches, response input items), the OpenAI way.

``limit`` and ``after`` (the last id already seen) pick the page; the answer carries ``first_id``, ``last_id``
and ``has_more``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from .common import CompatError

T = TypeVar("T")


def cursor_limit(request: web.Request, high: int, default: int = 20) -> int:
    raw = request.query.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError:
        raise CompatError(400, "invalid_parameter_error", f"limit must be an integer, got {raw!r}.", "limit") from None
    if not 1 <= limit <= high:
        raise CompatError(400, "invalid_parameter_error", f"limit must be between 1 and {high}.", "limit")
    return limit


def cursor_page(
    items: Sequence[T], id_of: Callable[[T], str], after: str | None, limit: int, unknown_after: str | None
) -> tuple[list[T], dict[str, Any]]:
    """The page after ``after`` and its cursor fields.

    An ``after`` that names no item is refused with the message ``unknown_after``, or, when that is None,
    answered with an empty page.
    """
    rest = list(items)
    if after:
        ids = [id_of(item) for item in rest]
        if after in ids:
            rest = rest[ids.index(after) + 1 :]
        elif unknown_after is not None:
            raise CompatError(400, "invalid_parameter_error", unknown_after, "after")
        else:
            rest = []
    listed = rest[:limit]
    fields = {
        "first_id": id_of(listed[0]) if listed else None,
        "last_id": id_of(listed[-1]) if listed else None,
        "has_more": len(rest) > limit,
    }
    return listed, fields
