"""A burst: many datasets uploaded at once through the local stack, with the service's default quotas.

    python bench/burst.py [--datasets 200] [--time-scale 100] [--timeout 900]

Starts `LocalStack` (every function of s.yaml under its triggers, the emulator with its default quotas: 20
fine-tune jobs running or succeeded, 100 native files / 5 GB) with a timer every second, puts N distinct SFT
datasets into the bucket at once, and waits until no run is active. Every 0.2 s it samples what the quotas hold
(`GET /_emulator/config` "usage"), and how many runs wait in line. At the end it reads every run's final stage
and the emulator's counts of what was ever created and what is still live.

Printed side by side with the anchor: the issue's measurement on main before admission (50 datasets at once:
20 DONE, 30 FAILED on the 429), and the targets (N DONE, 0 FAILED, no duplicate file/job/deployment, quotas
never exceeded, and after the burst the live resources the retention policy says).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "samples" / "sft" / "train.jsonl").read_bytes()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


async def burst(datasets: int, time_scale: float, timeout: float) -> dict[str, Any]:
    from bailian_flow.local.stack import LocalStack
    from bailian_flow.pipeline.protocol.layout import ACTIVE_PREFIX, INDEX_PREFIX, WAITING_PREFIX
    from bailian_flow.runlog import RunLog
    from bailian_flow.store import open_store

    with tempfile.TemporaryDirectory() as temp:
        async with LocalStack(
            ROOT / "s.yaml", data_dir=temp, time_scale=time_scale, timer_interval=1.0, workers=8
        ) as stack:
            store = open_store(store="oss", bucket=stack.bucket, endpoint=stack.oss_endpoint)
            try:
                started = time.monotonic()
                # Distinct contents (a different number of trailing blank lines): one run per dataset.
                keys = [f"datasets/burst/{n:04d}.jsonl" for n in range(datasets)]
                await asyncio.gather(*(store.put(key, SAMPLE + b"\n" * n) for n, key in enumerate(keys)))
                peaks = {"fine_tune_jobs": 0, "files": 0, "file_bytes": 0}
                peak_waiting = 0
                quotas = get_json(f"{stack.emulator_url}/_emulator/config")["quotas"]
                while time.monotonic() - started < timeout:
                    usage = get_json(f"{stack.emulator_url}/_emulator/config")["usage"]
                    for name in peaks:
                        peaks[name] = max(peaks[name], int(usage.get(name, 0)))
                    waiting = len([info async for info in store.list(WAITING_PREFIX)])
                    peak_waiting = max(peak_waiting, waiting)
                    active = [info async for info in store.list(ACTIVE_PREFIX)]
                    indexed = [info async for info in store.list(INDEX_PREFIX)]
                    if not active and len(indexed) >= datasets:
                        break
                    await asyncio.sleep(0.2)
                elapsed = time.monotonic() - started
                runs = RunLog(store)
                run_ids, _ = await runs.recent(limit=datasets * 2)
                stages: dict[str, int] = {}
                for run_id in run_ids:
                    entry = await runs.latest(run_id)
                    stage = entry.stage if entry else "missing"
                    stages[stage] = stages.get(stage, 0) + 1
                history_waits = 0
                for run_id in run_ids:
                    history_waits += any(entry.stage == "waiting" for entry in await runs.history(run_id))
                state = get_json(f"{stack.emulator_url}/_emulator/state")
            finally:
                await store.close()
    return {
        "elapsed": elapsed,
        "runs": len(run_ids),
        "stages": stages,
        "waited": history_waits,
        "peaks": peaks,
        "peak_waiting": peak_waiting,
        "quotas": quotas,
        "created": state["created"],
        "live": state["live"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    n = args.datasets
    result = asyncio.run(burst(n, args.time_scale, args.timeout))
    stages, created, live, peaks, quotas = (
        result["stages"],
        result["created"],
        result["live"],
        result["peaks"],
        result["quotas"],
    )
    done, failed = stages.get("done", 0), stages.get("failed", 0)
    rows = [
        ("runs DONE", f"{done}", f"{n}", "20 of 50", done == n),
        ("runs FAILED", f"{failed}", "0", "30 of 50 (429)", failed == 0),
        ("runs that waited in line", f"{result['waited']}", "-", "0 (failed instead)", True),
        ("fine-tune jobs created", f"{created['fine_tunes']}", f"{n} (one per run)", "-", created["fine_tunes"] == n),
        ("files uploaded", f"{created['files']}", f"{n} (one per run)", "-", created["files"] == n),
        ("deployments created", f"{created['deployments']}", f"{n}", "-", created["deployments"] == n),
        (
            "peak jobs held (quota)",
            f"{peaks['fine_tune_jobs']}",
            f"<= {quotas['fine_tune_jobs']}",
            "-",
            peaks["fine_tune_jobs"] <= quotas["fine_tune_jobs"],
        ),
        (
            "peak files held (quota)",
            f"{peaks['files']}",
            f"<= {quotas['files']}",
            "-",
            peaks["files"] <= quotas["files"],
        ),
        ("live jobs after", f"{live['fine_tunes']}", "10 (keep-last-10)", "-", live["fine_tunes"] <= 10),
        ("live files after", f"{live['files']}", "0 (deleted once the job ended)", "-", live["files"] == 0),
        ("live deployments after", f"{live['deployments']}", f"{n} (no deployment_ttl)", "-", live["deployments"] == n),
    ]
    print(
        f"burst: {n} datasets at once through the local stack, default quotas, time scale {args.time_scale:g}; "
        f"settled in {result['elapsed']:.0f} s; most runs in line at once: {result['peak_waiting']}"
    )
    print(f"{'':<26} {'this run':>10}  {'target':<32} {'anchor: main before (50 at once)':<34} met")
    for name, value, target, anchor, met in rows:
        print(f"{name:<26} {value:>10}  {target:<32} {anchor:<34} {'yes' if met else 'NO'}")
    print(f"final stages: {stages}")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
