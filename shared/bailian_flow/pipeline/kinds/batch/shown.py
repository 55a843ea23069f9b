"""What the status page and `runs show` say of a batch run (the spec's `shown` hook): its shards (lines done,
failed, resubmitted, per shard and in total), its tokens and cost so far, its pending requests per model, and the
batches it has running on Bailian."""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.kinds.batch.batch_state import RUNNING_STATUSES, BatchRunState
from bailian_flow.pipeline.protocol.state import RunState

MAX_SHARDS_SHOWN = 100  # the totals count every shard; the table lists the first ones


def facts(state: RunState) -> dict[str, Any]:
    if not isinstance(state, BatchRunState):
        return {}
    batch = state.batch
    rows: list[dict[str, Any]] = [
        {
            "index": shard.index,
            "model": shard.model,
            "generation": shard.generation,
            "lines": shard.lines,
            "status": shard.status,
            "completed": shard.completed,
            "failed": shard.failed,
            # A later generation re-runs lines an expired or failed shard did not run.
            "resubmitted": shard.lines if shard.generation > 1 else 0,
        }
        for shard in batch.shards
    ]
    done = sum(shard.completed for shard in batch.shards)
    failed = sum(shard.failed for shard in batch.shards)
    totals = {
        "lines": batch.total,
        "completed": done,
        "failed": failed,
        "resubmitted": sum(shard.lines for shard in batch.shards if shard.generation > 1),
        "pending": max(batch.total - done - failed, 0),
        "shards": len(rows),
    }
    pending: dict[str, int] = {}
    owns: list[dict[str, Any]] = []
    for shard in batch.shards:
        if shard.batch_id and shard.status in RUNNING_STATUSES:
            pending[shard.model] = pending.get(shard.model, 0) + shard.lines
            owns.append({"resource": "batch", "id": shard.batch_id, "what": f"shard {shard.index}, {shard.status}"})
    return {
        "shards": {"totals": totals, "rows": rows[:MAX_SHARDS_SHOWN], "waiting": batch.waiting},
        "batch_costs": _costs(state),
        "pending_requests": pending,
        "owns": owns,
    }


def _costs(state: BatchRunState) -> dict[str, Any]:
    from bailian_flow.estimate import BATCH_PRICES

    input_tokens = sum(shard.input_tokens for shard in state.batch.shards)
    output_tokens = sum(shard.output_tokens for shard in state.batch.shards)
    amounts: dict[str, float] = {}
    unpriced: set[str] = set()
    for shard in state.batch.shards:
        price = BATCH_PRICES.get(shard.model)
        if price is None:
            unpriced.add(shard.model)
            continue
        spent = (shard.input_tokens + shard.output_tokens) * price.per_1k_tokens / 1000
        amounts[price.currency] = amounts.get(price.currency, 0.0) + spent
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": [{"amount": round(amount, 6), "currency": currency} for currency, amount in sorted(amounts.items())],
        "unpriced_models": sorted(unpriced),
    }
