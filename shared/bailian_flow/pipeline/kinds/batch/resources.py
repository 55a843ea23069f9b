"""The batch kind's own Bailian resources: a shard's input file (compatible files API) and its batch, both found by
the shard's tag (`batch_state.shard_name`); what `cleanup` calls for them (`KindSpec.hooks` find and undo)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection

from bailian_flow.client.errors import APIStatusError, NotFoundError
from bailian_flow.pipeline.kinds.batch.batch_state import FINISHED_STATUSES, RUNNING_STATUSES
from bailian_flow.pipeline.protocol import reconcile
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunState


async def find(flow: Flow, state: RunState, kinds: Collection[str]) -> list[Made]:
    """The run's batches still running (every attempt and generation), its shard files and the answer files of
    its batches (untagged: found through their batch), by tag and by record."""
    found: list[Made] = []
    batches = await reconcile.batches_of_run(flow, state.run_id) if {"batch", "batch-file"} & set(kinds) else []
    if "batch" in kinds:
        found += [Made("batch", batch.id) for batch in batches if batch.status in RUNNING_STATUSES]
    if "batch-file" in kinds:
        found += [Made("batch-file", item.id) for item in await reconcile.batch_files_of_run(flow, state.run_id)]
        # A batch that ended before its answers were collected (or by an actor that died unrecorded) left them.
        listed = {batch.id for batch in batches}
        recorded = [rid for kind, rid in state.recorded() if kind == "batch" and rid not in listed]
        for batch_id in recorded:  # lists lag creates: the plan's own, read by id
            with contextlib.suppress(NotFoundError):
                batches.append(await flow.client.batches.get(batch_id))
        found += [
            Made("batch-file", file_id)
            for batch in batches
            for file_id in (batch.output_file_id, batch.error_file_id)
            if file_id
        ]
    # Lists lag creates: what the plan records goes by its id, listed yet or not (an answer file is untagged).
    gone = set(state.undone)
    found += [Made(kind, rid) for kind, rid in state.recorded() if kind in kinds and f"{kind}:{rid}" not in gone]
    return list(dict.fromkeys(found))


async def undo(flow: Flow, made: Made) -> str:
    """Cancel a batch or delete a shard file; errors are the caller's (`cleanup.undo`) to read."""
    if made.kind == "batch":
        try:
            await flow.client.batches.cancel(made.id)
        except APIStatusError as exc:
            if exc.status is not None and exc.status >= 500:
                raise
            # A batch that ended before the cancel reached it cannot be cancelled: it runs no more, which is done.
            seen = await flow.client.batches.get(made.id)
            if seen.status in FINISHED_STATUSES:
                return f"{made} had ended ({seen.status})"
            raise
        return f"canceled {made}"
    await flow.client.compat_files.delete(made.id)
    return f"deleted {made}"


_TAG = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_]+)-a(?P<attempt>\d+)-s\d+-g\d+")
AUDIT_PAGE = 50


def _tagged(name: str | None) -> tuple[str, int] | None:
    match = _TAG.match(name or "")
    return (match["run_id"], int(match["attempt"])) if match else None


async def audit_batches(flow: Flow, cursor: str | None) -> tuple[list[tuple[Made, str, int]], str | None]:
    """One page of Bailian's batches whose tag names a run (`KindSpec.audits`): those still running, and the answer
    files of those that ended (untagged themselves; a duplicate canceled by its maker may write them afterwards)."""
    page = await flow.client.batches.list_page(after=cursor, limit=AUDIT_PAGE)
    found: list[tuple[Made, str, int]] = []
    for batch in page.data:
        tagged = _tagged(reconcile.batch_tag(batch))
        if tagged is None:
            continue
        if batch.status in RUNNING_STATUSES:
            found.append((Made("batch", batch.id), *tagged))
        elif batch.status in FINISHED_STATUSES:
            answers = (batch.output_file_id, batch.error_file_id)
            found += [(Made("batch-file", file_id), *tagged) for file_id in answers if file_id]
    return found, page.last_id if page.has_more else None


async def audit_files(flow: Flow, cursor: str | None) -> tuple[list[tuple[Made, str, int]], str | None]:
    """One page of the batch files: shard inputs, named by their tags."""
    page = await flow.client.compat_files.list_page(after=cursor, limit=AUDIT_PAGE, purpose="batch")
    found = [(Made("batch-file", item.id), *tagged) for item in page.data if (tagged := _tagged(item.filename))]
    return found, page.last_id if page.has_more else None
