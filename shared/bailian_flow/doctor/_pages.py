"""List page sizes: whether each list answers the page size the pipeline asks (service-contract.md#C11, #C18,
#C24, #C34). A page silently shorter than asked while `total` says more would make page numbers skip items."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from bailian_flow.client import errors

from ._account import said as _said
from ._report import HOLDS, UNKNOWN, VIOLATED, Report, Status

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient

__all__ = ["DEPLOYMENT_PAGE_SIZES", "PAGE_SIZE", "page_sizes"]

# The page sizes the pipeline asks (pipeline/protocol/bulk.PAGE_SIZES) and the largest documented anywhere.
DEPLOYMENT_PAGE_SIZES = (100, 200)
PAGE_SIZE = 100


async def page_sizes(client: BailianClient, report: Report) -> None:
    async def fine_tunes(size: int) -> tuple[int | None, int, int]:
        page = await client.fine_tunes.list_page(1, size)
        return _echoed(page), len(page.jobs), page.total

    async def deployments(size: int) -> tuple[int | None, int, int]:
        page = await client.deployments.list_page(1, size)
        return _echoed(page), len(page.deployments), page.total

    async def files(size: int) -> tuple[int | None, int, int]:
        page = await client.files.list_page(1, size)
        return _echoed(page), len(page.files), page.total

    await _page_size(report, "C11", "GET /fine-tunes", fine_tunes, (PAGE_SIZE,))
    remedy = "the pipeline asks 100 a page (protocol/bulk.PAGE_SIZES) and reads every one; 200 gets 100"
    await _page_size(report, "C24", "GET /deployments", deployments, DEPLOYMENT_PAGE_SIZES, remedy)
    await _page_size(report, "C18", "GET /files", files, (PAGE_SIZE,))
    try:
        batch_page = await client.batches.list_page(limit=PAGE_SIZE)
    except errors.BailianError as exc:
        report.add("C34", f"GET /batches limit {PAGE_SIZE} accepted", VIOLATED, _said(exc))
    else:
        got = len(batch_page.data)
        capped = batch_page.has_more and got < PAGE_SIZE
        status: Status = VIOLATED if capped else HOLDS
        report.add(
            "C34", f"GET /batches limit {PAGE_SIZE} accepted", status, f"{got} items, has_more {batch_page.has_more}"
        )


def _echoed(page: Any) -> int | None:
    return page.page_size if "page_size" in page.model_fields_set else None


async def _page_size(
    report: Report,
    row: str,
    what: str,
    fetch: Callable[[int], Awaitable[tuple[int | None, int, int]]],
    sizes: Sequence[int],
    remedy: str = "",
) -> None:
    verdicts: list[tuple[Status, str]] = []
    for size in sizes:
        try:
            echoed, got, total = await fetch(size)
        except errors.BailianError as exc:
            verdicts.append((VIOLATED, f"page_size {size} refused: {_said(exc)}"))
            continue
        expected = min(size, total)
        if (echoed is not None and echoed < size) or got < expected:
            verdicts.append(
                (VIOLATED, f"page_size {size} capped: answered page_size {echoed}, {got} of {total} item(s)")
            )
        elif total < size and echoed is None:
            verdicts.append(
                (UNKNOWN, f"page_size {size}: {got} of {total} items, no page_size echoed (too few to tell)")
            )
        else:
            verdicts.append((HOLDS, f"page_size {size} accepted ({got} of {total} item(s))"))
    statuses = [status for status, _ in verdicts]
    worst: Status = VIOLATED if VIOLATED in statuses else UNKNOWN if UNKNOWN in statuses else HOLDS
    sizes_text = "/".join(str(size) for size in sizes)
    evidence = "; ".join(text for _, text in verdicts)
    if worst == VIOLATED and remedy:
        evidence += f": {remedy}"
    report.add(row, f"{what} page size {sizes_text} accepted", worst, evidence)
