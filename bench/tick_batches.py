"""One on_timer tick over many batch runs with shards in flight, against the same statuses read one GET each.

    python bench/tick_batches.py [--runs 100] [--shards 2]

A fresh emulator (clock frozen; the parallel-batch quota raised so that hundreds of batches run at once), R batch
runs in `batch-running` with S shards each in flight (R x S batches, made through the compatible API and tagged
as the pipeline tags them). Then ticks through the real `tick(flow)` with s.yaml's 60 s timeout:

- cold: the timer has no hint yet, so it loads every run;
- steady: nothing moved: every shard's status comes from the list of batches, no run is loaded;
- all moved: the clock moved every batch to `completed`, so every run is loaded and handed over (`batch-ready`).

The anchor is the way shards were polled before: one GET per shard in flight (`openai` SDK
`client.batches.retrieve(id)`, one after the other, against the same emulator), its calls and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tick import API_KEY, TIMEOUT, control, environment, one_tick

from bailian_flow.emulator.process import spawn

LINE = (
    b'{"custom_id": "q", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}}\n'
)


async def seed(url: str, runs: int, shards: int) -> list[str]:
    """R runs in `batch-running`, each following S batches in flight; returns the batch ids."""
    import aiohttp

    from bailian_flow.config import Settings
    from bailian_flow.fc import make_context
    from bailian_flow.pipeline.kinds.batch.batch_state import BatchRun, Shard, shard_name
    from bailian_flow.pipeline.protocol.runtime import open_flow, utc_now
    from bailian_flow.pipeline.protocol.state import RunState, Source
    from bailian_flow.pipeline.protocol.transitions import create

    base = f"{url}/compatible-mode/v1"
    limit = asyncio.Semaphore(32)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:

        async def submitted(run_id: str, index: int) -> Shard:
            shard = Shard(
                index=index,
                root=index,
                model="qwen-plus",
                start=0,
                end=len(LINE),
                first_line=1,
                lines=1,
                bytes=len(LINE),
            )
            tag = shard_name(run_id, 1, shard)
            form = aiohttp.FormData()
            form.add_field("purpose", "batch")
            form.add_field("file", LINE, filename=f"{tag}.jsonl")
            async with limit, session.post(f"{base}/files", data=form) as response:
                file_id = (await response.json())["id"]
            body = {
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": {"ds_name": tag},
            }
            async with limit, session.post(f"{base}/batches", json=body) as response:
                batch = await response.json()
            return shard.model_copy(update={"file_id": file_id, "batch_id": batch["id"], "status": batch["status"]})

        plans = {}
        for number in range(runs):
            run_id = f"r{number:015x}"
            plans[run_id] = await asyncio.gather(*(submitted(run_id, index) for index in range(shards)))

    async with open_flow(make_context("on_timer", timeout=TIMEOUT), Settings.from_env()) as flow:

        async def run(run_id: str, plan: list[Shard]) -> None:
            state = RunState(
                run_id=run_id,
                kind="batch",
                stage="batch-running",
                source=Source(bucket=flow.settings.bucket, key=f"batches/bench/{run_id}.jsonl", size=len(LINE)),
                created_at=utc_now().isoformat(),
                batch=BatchRun(total=len(plan), shards=plan),
            )
            async with limit:
                await create(flow, state, "seeded by bench/tick_batches.py")

        await asyncio.gather(*(run(run_id, plan) for run_id, plan in plans.items()))
    return [shard.batch_id for plan in plans.values() for shard in plan if shard.batch_id]


def sdk_loop(url: str, batch_ids: list[str]) -> float:
    """Seconds for `openai` `batches.retrieve` of every batch, one after the other."""
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=f"{url}/compatible-mode/v1")
    started = time.perf_counter()
    for batch_id in batch_ids:
        client.batches.retrieve(batch_id)
    return time.perf_counter() - started


def measure(runs: int, shards: int) -> tuple[list[dict[str, Any]], int, float]:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        process, url = spawn(root / "emulator", "--time-scale", "0.0001", "--api-key", API_KEY)
        try:
            control(url, "/config", {"quotas": {"batches": runs * shards + 10}})
            os.environ.update(environment(url, "oss", root / "bucket"))
            os.environ["BAILIAN_FLOW_QUOTA_BATCHES"] = str(runs * shards + 10)
            started = time.perf_counter()
            batch_ids = asyncio.run(seed(url, runs, shards))
            print(
                f"  seeded {runs} runs, {len(batch_ids)} batches in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            rows = [{"tick": "cold (no hint)", **asyncio.run(one_tick())}]
            rows.append({"tick": "steady", **asyncio.run(one_tick())})
            loop_seconds = sdk_loop(url, batch_ids)
            control(url, "/clock", {"advance": 60})  # every batch completes
            rows.append({"tick": "all moved", **asyncio.run(one_tick())})
        finally:
            process.terminate()
            process.wait(timeout=10)
    return rows, len(batch_ids), loop_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--shards", type=int, default=2, help="batches in flight per run")
    args = parser.parse_args()
    rows, batches, loop_seconds = measure(args.runs, args.shards)
    print(f"one on_timer tick over {args.runs} batch runs, {batches} shards in flight (timeout {TIMEOUT} s)")
    print(
        f"{'tick':<16} {'polled':>7} {'loaded':>7} {'bailian calls':>14} {'tick s':>7} | "
        f"{'GET each: calls':>15} {'s':>6}"
    )
    for row in rows:
        counts = row["counts"]
        print(
            f"{row['tick']:<16} {counts['polled']:>7} {counts['loaded']:>7} {counts['bailian_calls']:>14} "
            f"{counts['seconds']:>7.2f} | {batches:>15} {loop_seconds:>6.2f}"
        )
    print(
        "anchor: one GET per shard in flight (openai SDK batches.retrieve, one after the other), as the timer "
        "polled shards before; the tick lists batches once (pages of 100) and GETs only shards the list misses."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
