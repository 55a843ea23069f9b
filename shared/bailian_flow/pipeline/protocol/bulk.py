"""One list pass per resource family per tick, instead of one GET per run.

Fine-tunes (page size 100), deployments (200), imports (100), native files (100, for the file quota) and batches
(100, a cursor list: `after` the last id of the page before) are read page after page, concurrently, each family
under the client's rate limit, and stop when the tick's time for listing is spent: a family read to its end is
*complete*, and only then does "not in the list" mean "gone".
What was listed is put in `flow.seen` so that the poll steps use it instead of a GET.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bailian_flow.client.errors import BailianError
from bailian_flow.pipeline.protocol.runtime import Flow

if TYPE_CHECKING:
    from bailian_flow.client.models import Batch, Deployment, FileInfo, FineTuneJob, ImportJob

log = logging.getLogger("bailian_flow.pipeline")

FINE_TUNES = "fine-tune"
DEPLOYMENTS = "deployment"
IMPORTS = "import"
FILES = "file"
BATCHES = "batch"
# The largest page each list endpoint allows (bailian-api.md).
# `/deployments` page size is undocumented; a reference CLI says at most 100, and a silently capped page would make
# page numbers skip deployments (service-contract.md#C24).
PAGE_SIZES = {FINE_TUNES: 100, DEPLOYMENTS: 100, IMPORTS: 100, FILES: 100, BATCHES: 100}


@dataclass
class Listed:
    """Bailian's lists as one tick read them; a family is in `complete` only when read to its end."""

    jobs: list[FineTuneJob] | None = None
    deployments: list[Deployment] | None = None
    imports: list[ImportJob] | None = None
    files: list[FileInfo] | None = None
    batches: list[Batch] | None = None
    complete: set[str] = field(default_factory=set)
    pages: int = 0


Page = tuple[Sequence[Any], int]


async def _read_all(fetch: Callable[[int], Awaitable[Page]], page_size: int, until: float) -> tuple[list[Any], bool]:
    """Every item of a page-numbered list, and whether its end was reached before `until` (monotonic)."""
    items: list[Any] = []
    page_no = 1
    while time.monotonic() < until:
        page, total = await fetch(page_no)
        items.extend(page)
        if not page or page_no * page_size >= total:
            return items, True
        page_no += 1
    return items, False


async def _read_cursor(items: AsyncIterator[Any], until: float) -> tuple[list[Any], bool]:
    """Every item of a cursor list (the client pages it), and whether its end was reached before `until`."""
    read: list[Any] = []
    async for item in items:
        read.append(item)
        if time.monotonic() >= until:
            return read, False
    return read, True


async def list_families(flow: Flow, families: set[str], listed: Listed, until: float) -> None:
    """Read the families asked for into `listed` (and `flow.seen`), stopping at `until`."""
    size = flow.settings.timer_page_size
    client = flow.client

    async def fine_tunes(page_no: int) -> Page:
        page = await client.fine_tunes.list_page(page_no, size or PAGE_SIZES[FINE_TUNES])
        return page.jobs, page.total

    async def deployments(page_no: int) -> Page:
        page = await client.deployments.list_page(page_no, size or PAGE_SIZES[DEPLOYMENTS])
        return page.deployments, page.total

    async def imports(page_no: int) -> Page:
        page = await client.custom_models.list_page(page_no, size or PAGE_SIZES[IMPORTS])
        return page.list_, page.total

    async def files(page_no: int) -> Page:
        page = await client.files.list_page(page_no, size or PAGE_SIZES[FILES])
        return page.files, page.total

    readers = {FINE_TUNES: fine_tunes, DEPLOYMENTS: deployments, IMPORTS: imports, FILES: files}

    async def read(family: str) -> None:
        try:
            if family == BATCHES:
                items, complete = await _read_cursor(client.batches.list(limit=size or PAGE_SIZES[BATCHES]), until)
            else:
                items, complete = await _read_all(readers[family], size or PAGE_SIZES[family], until)
        except BailianError as exc:
            # A family we could not list is polled run by run instead, or waits for the next tick.
            log.warning("listing %ss failed: %s", family, type(exc).__name__)
            return
        if complete:
            listed.complete.add(family)
        listed.pages += -(-len(items) // (size or PAGE_SIZES[family])) or 1
        if family == FINE_TUNES:
            listed.jobs = items
            flow.seen.update({f"fine-tune:{job.job_id}": job for job in items})
        elif family == DEPLOYMENTS:
            listed.deployments = items
            flow.seen.update({f"deployment:{item.deployed_model}": item for item in items})
        elif family == IMPORTS:
            listed.imports = items
            flow.seen.update({f"import:{job.job_id}": job for job in items})
        elif family == BATCHES:
            listed.batches = items
            flow.seen.update({f"batch:{batch.id}": batch for batch in items})
        else:
            listed.files = items if complete else None

    wanted = [family for family in families if family in (*readers, BATCHES) and family not in listed.complete]
    await asyncio.gather(*(read(family) for family in wanted))
