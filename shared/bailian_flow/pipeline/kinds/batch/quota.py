"""The `batches` quota: how many batches the account runs at once, counted by the timer for admission."""

from __future__ import annotations

from collections.abc import Sequence

from bailian_flow.pipeline.kinds.batch.batch_state import IN_FLIGHT_STATUSES
from bailian_flow.pipeline.protocol import bulk
from bailian_flow.pipeline.protocol.admission import BATCHES, Room, Taking, about_to_take
from bailian_flow.pipeline.protocol.bulk import Listed
from bailian_flow.pipeline.protocol.runtime import Flow


async def count_batches(flow: Flow, briefs: Sequence[Taking], listed: Listed) -> Room | None:
    """Batches running now (the tick's list of batches, or a listing of the in-flight statuses at once when the tick
    could not read it to its end: service-contract.md#C34) and runs about to start one."""
    if listed.batches is not None and bulk.BATCHES in listed.complete:
        used = sum(1 for batch in listed.batches if str(batch.status) in IN_FLIGHT_STATUSES)
    else:
        used = 0
        async for _ in flow.client.batches.list(status=sorted(IN_FLIGHT_STATUSES)):
            used += 1
    used += len(about_to_take(briefs, BATCHES, "batch-submitting"))
    return Room(used=used, limit=flow.settings.quota_batches)
