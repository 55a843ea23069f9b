"""One on_timer tick over many active runs, against the same statuses read by a `dashscope` `FineTunes.get` loop.

    python bench/tick.py [--runs 1000 10000] [--store oss|file] [--sdk-sample 1000]

For each size: a fresh emulator (clock frozen, so statuses move only when the bench says; quotas raised so that
thousands of jobs exist), N fine-tune jobs named as the pipeline names them, and N runs in `training` following
them, written through the run log to the store the functions use (the emulator's OSS by default). Then ticks
through the real `tick(flow)` with the FC timeout of s.yaml (60 s) and the client's default rate limits:

- tick 1: the timer has no hint yet, so it loads every run it can reach in its time (and rotates);
- tick 2: steady state, nothing moved: every run polled from the bulk list, no run loaded;
- tick 3 onwards, after the emulated clock moved every job PENDING -> QUEUING: every run's status moved, so every
  run is loaded and advanced (a commit each), for as many ticks as that takes.

The anchor: the same N statuses fetched with `dashscope.FineTunes.get(job_id)` one after the other (the SDK's
way to follow a job), measured against the same emulator without any rate limit (for 10,000 runs a sample is
timed and scaled), and what that loop would take under the service's documented 10 QPS for queries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bailian_flow.emulator.process import spawn

API_KEY = "sk-bench-0000"
BUCKET = "bench-tick"
TIMEOUT = 60  # s.yaml: on_timer timeout
SERVICE_QPS = 10.0


def control(url: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/_emulator{path}",
        data=data,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def environment(url: str, store: str, root: Path) -> dict[str, str]:
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_BASE_URL": url,
        "BAILIAN_FLOW_BUCKET": BUCKET,
        "BAILIAN_FLOW_OSS_ENDPOINT": url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-ak",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-secret",
        "BAILIAN_FLOW_QUOTA_FINE_TUNE_JOBS": "1000000",
    }
    if store == "file":
        env["BAILIAN_FLOW_STORE"] = f"file://{root}"
    return env


async def seed(url: str, runs: int) -> list[tuple[str, str]]:
    """N fine-tune jobs named as the pipeline names them, and N runs in `training` following them."""
    import aiohttp

    from bailian_flow.config import Settings
    from bailian_flow.fc import make_context
    from bailian_flow.pipeline.protocol.runtime import open_flow, utc_now
    from bailian_flow.pipeline.protocol.state import RunState, Source
    from bailian_flow.pipeline.protocol.transitions import create

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        form = aiohttp.FormData()
        form.add_field("files", b'{"messages": []}\n', filename="train.jsonl")
        async with session.post(f"{url}/api/v1/files", data=form) as response:
            file_id = (await response.json())["data"]["uploaded_files"][0]["file_id"]
        limit = asyncio.Semaphore(32)

        async def job(index: int) -> tuple[str, str]:
            run_id = f"r{index:015x}"
            body = {"model": "qwen3-8b", "training_file_ids": [file_id], "job_name": f"bf-{run_id}-1"}
            async with limit, session.post(f"{url}/api/v1/fine-tunes", json=body) as response:
                answer = await response.json()
            return run_id, answer["output"]["job_id"]

        pairs = await asyncio.gather(*(job(index) for index in range(runs)))

    async with open_flow(make_context("on_timer", timeout=TIMEOUT), Settings.from_env()) as flow:
        limit = asyncio.Semaphore(32)

        async def run(run_id: str, job_id: str) -> None:
            state = RunState(
                run_id=run_id,
                stage="training",
                source=Source(bucket=BUCKET, key=f"datasets/bench/{run_id}.jsonl", size=17),
                created_at=utc_now().isoformat(),
                file_id=file_id,
                job_name=f"bf-{run_id}-1",
                job_id=job_id,
                job_status="PENDING",
            )
            async with limit:
                await create(flow, state, "seeded by bench/tick.py")

        await asyncio.gather(*(run(run_id, job_id) for run_id, job_id in pairs))
    return pairs


async def one_tick() -> dict[str, Any]:
    from bailian_flow.config import Settings
    from bailian_flow.fc import make_context
    from bailian_flow.pipeline.protocol.runtime import open_flow
    from bailian_flow.pipeline.timer.tick import tick

    async with open_flow(make_context("on_timer", timeout=TIMEOUT), Settings.from_env()) as flow:
        report = await tick(flow)
    return report.as_dict()


def sdk_loop(url: str, job_ids: list[str]) -> float:
    """Seconds per `dashscope.FineTunes.get`, measured over `job_ids` one after the other."""
    import dashscope

    dashscope.base_http_api_url = f"{url}/api/v1"
    started = time.perf_counter()
    for job_id in job_ids:
        answer = dashscope.FineTunes.get(job_id=job_id, api_key=API_KEY)
        assert answer.status_code == 200, answer
    return (time.perf_counter() - started) / len(job_ids)


def measure(runs: int, store: str, sdk_sample: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        (root / "bucket").mkdir()
        process, url = spawn(root / "emulator", "--time-scale", "0.0001", "--api-key", API_KEY)
        try:
            control(url, "/config", {"quotas": {"fine_tune_jobs": runs + 10}})
            os.environ.update(environment(url, store, root / "bucket"))
            started = time.perf_counter()
            pairs = asyncio.run(seed(url, runs))
            print(f"  seeded {runs} jobs and runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            rows = [{"tick": "cold (no hint)", **asyncio.run(one_tick())}]
            for index in range(1, 4):
                report = asyncio.run(one_tick())
                rows.append({"tick": f"steady #{index}", **report})
                if report["counts"]["loaded"] == 0:
                    break
            control(url, "/clock", {"advance": 6})  # PENDING -> QUEUING for every job: every run moved
            for index in range(1, 6):
                report = asyncio.run(one_tick())
                rows.append({"tick": f"all moved #{index}", **report})
                if not report["deferred"]:
                    break
            sample = [job_id for _, job_id in pairs[: min(sdk_sample, runs)]]
            per_get = statistics.median(sdk_loop(url, sample[i::3]) for i in range(3))
            for row in rows:
                row["sdk_loop_s"] = per_get * runs
                row["sdk_loop_at_qps_s"] = runs / SERVICE_QPS
                row["sdk_sampled"] = len(sample) < runs
        finally:
            process.terminate()
            process.wait(timeout=10)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--store", choices=("oss", "file"), default="oss")
    parser.add_argument("--sdk-sample", type=int, default=1000, help="GETs timed for the dashscope loop")
    args = parser.parse_args()
    header = (
        f"{'runs':>6} {'tick':<16} {'polled':>7} {'loaded':>7} {'deferred':>8} {'bailian':>8} {'oss rd':>7} "
        f"{'oss wr':>7} {'tick s':>7} {'timeout':>7} {'sdk loop s':>11} {'at 10 QPS':>10} {'vs loop':>8} "
        f"{'vs 10QPS':>8}"
    )
    results = {runs: measure(runs, args.store, args.sdk_sample) for runs in args.runs}
    print(f"one on_timer tick (store: {args.store}, timeout {TIMEOUT} s, client rate limits as shipped)")
    print(header)
    for runs, rows in results.items():
        for row in rows:
            counts = row["counts"]
            seconds = max(counts["seconds"], 1e-6)
            sampled = "~" if row["sdk_sampled"] else " "
            print(
                f"{runs:>6} {row['tick']:<16} {counts['polled']:>7} {counts['loaded']:>7} {counts['deferred']:>8} "
                f"{counts['bailian_calls']:>8} {counts['oss_reads']:>7} {counts['oss_writes']:>7} "
                f"{seconds:>7.2f} {TIMEOUT:>7} {sampled}{row['sdk_loop_s']:>10.1f} {row['sdk_loop_at_qps_s']:>10.0f} "
                f"{row['sdk_loop_s'] / seconds:>7.1f}x {row['sdk_loop_at_qps_s'] / seconds:>7.1f}x"
            )
    print(
        "anchor: dashscope FineTunes.get for every run, one after the other (~ = timed on a sample and scaled); "
        "'at 10 QPS' is that loop under the service's documented query limit. goal: every run polled in a tick, "
        ">= 10x faster than the loop."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
