"""What the deployment TTL costs a timer tick: the `ttl/` index next to keeping TTL'd runs on the active list.

    python bench/ttl_index.py [--waiting 10000] [--due 20] [--repeat 5]

A DONE run whose deployment has a TTL leaves the timer's active list and waits as an empty object
`ttl/<expiry>-<run_id>`. Here `--waiting` runs are scheduled in the future and `--due` are past their time (their
runs are gone, so expiring them is a read of the run and a delete of the entry: no Bailian call is needed, which
keeps the figure about the store). The store is a `FileStore` wrapped to count what a tick reads.

* ours:   `lifecycle.expire_deployments` — lists `ttl/` from the start and stops at the first entry not yet due.
* anchor: what keeping TTL'd runs active costs the same tick — the timer reads every waiting run's newest entry
          (one `RunLog.latest` per run, here the same object count as `active/` listing + one read each).

Target: a tick's TTL pass costs O(due), not O(waiting): with nothing of the runs to read (they are gone), one LIST
whose first `due + 1` keys are enumerated, one `latest` per due run, one delete each — under `2 x due + 3`
requests and objects together, whatever `--waiting` is.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from bailian_flow.config import Settings
from bailian_flow.pipeline.delivery.lifecycle import expire_deployments, ttl_key
from bailian_flow.pipeline.protocol.layout import ACTIVE_PREFIX, INDEX_PREFIX
from bailian_flow.pipeline.protocol.runtime import Flow, utc_now
from bailian_flow.runlog import RunLog
from bailian_flow.store import FileStore, ObjectInfo


class CountingStore(FileStore):
    """A FileStore that counts the objects a caller enumerates, reads and deletes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lists = self.listed = self.read = self.deleted = 0

    def reset(self) -> None:
        self.lists = self.listed = self.read = self.deleted = 0

    async def list(self, prefix: str, *, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:  # type: ignore[override]
        # On OSS a listing is one request per page of up to 1,000 keys (at least one).
        self.lists += 1
        async for info in super().list(prefix, start_after=start_after):
            self.listed += 1
            yield info

    async def get(self, key: str) -> bytes | None:
        self.read += 1
        return await super().get(key)

    async def delete(self, key: str) -> None:
        self.deleted += 1
        await super().delete(key)


def _flow(store: CountingStore) -> Flow:
    runs = RunLog(store, prefix="runs/", active_prefix=ACTIVE_PREFIX, index_prefix=INDEX_PREFIX)
    # No Bailian call happens on this path (the due runs are gone), so no notifier is needed (nor a client made).
    none: Any = None
    return Flow(settings=Settings(), store=store, runs=runs, notifier=none, writer="bench")


async def _fill(flow: Flow, waiting: int, due: int) -> list[str]:
    now = utc_now()
    run_ids = [f"r{index:015x}" for index in range(waiting + due)]
    for index, run_id in enumerate(run_ids):
        moment = now - timedelta(seconds=60) if index < due else now + timedelta(hours=1, seconds=index)
        await flow.store.put(ttl_key(moment, run_id), b"")
        if index >= due:
            # A waiting run exists: one DONE entry, which the anchor design reads on every tick.
            await flow.runs.append(run_id, 0, "done", {"run_id": run_id, "stage": "done"}, changed="bench")
    return run_ids[due:]


async def _anchor(flow: Flow, store: CountingStore, waiting_ids: list[str]) -> None:
    # The active-list design: every waiting run is visited (its newest entry read) on every tick.
    for run_id in waiting_ids:
        await flow.runs.latest(run_id)


async def main(waiting: int, due: int, repeat: int) -> None:
    rows: dict[str, list[tuple[float, int, int, int, int]]] = {"ours": [], "anchor": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            store = CountingStore(Path(tmp))
            waiting_ids = await _fill(_flow(store), waiting, due)
            # A fresh run log, as in a new invocation: nothing remembered from the writes above.
            flow = _flow(store)
            store.reset()
            started = time.perf_counter()
            expired = await expire_deployments(flow)
            elapsed = time.perf_counter() - started
            assert expired == [], "the due runs are gone: their entries are dropped, nothing is undeployed"
            rows["ours"].append((elapsed, store.lists, store.listed, store.read, store.deleted))
            store.reset()
            flow = _flow(store)
            started = time.perf_counter()
            await _anchor(flow, store, waiting_ids)
            anchor_elapsed = time.perf_counter() - started
            rows["anchor"].append((anchor_elapsed, store.lists, store.listed, store.read, store.deleted))
            await store.close()
    print(f"TTL pass of one tick: {waiting} deployments waiting, {due} due; median of {repeat}")
    print(f"{'design':<34}{'time (ms)':>12}{'LISTs':>8}{'listed':>10}{'GETs':>8}{'deleted':>9}")
    labels = {"ours": "ttl/ index (expire_deployments)", "anchor": "anchor: TTL'd runs kept active"}
    for name, results in rows.items():
        elapsed = statistics.median(row[0] for row in results) * 1000
        lists, listed, read, deleted = results[0][1:]
        print(f"{labels[name]:<34}{elapsed:>12.1f}{lists:>8}{listed:>10}{read:>8}{deleted:>9}")
    _, lists, listed, read, _ = rows["ours"][0]
    touched = lists + read + listed
    print(
        f"target: ours touches < 2 x due + 3 = {2 * due + 3} (requests + objects): {touched}, "
        f"{'met' if touched < 2 * due + 3 else 'MISSED'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.waiting, args.due, args.repeat))
