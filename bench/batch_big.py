"""A large batch inference input through the whole stack, next to the openai SDK doing one shard by hand.

    python bench/batch_big.py [--lines 250000] [--line-kb 4.2] [--skip-full]

Generates a JSONL of chat requests (250,000 lines of ~4.2 KB: over 1 GB), spawns one emulator, and then, each in
a fresh interpreter so no run inherits another's heap:

* ours, full:   the input put under `batches/` of the emulator's bucket; `LocalStack` runs the functions of
                s.yaml under their triggers (the timer every second, finish callbacks through the webhook's HTTP
                trigger) until the run is DONE: validate + plan, shards streamed OSS → Bailian, batches,
                results collected and merged back into input order, written to `results/`.
* ours, 1 shard: the same on the first 50,000 lines (one shard), for the like-for-like row.
* openai SDK:   the same 50,000 lines by hand: `files.create` → `batches.create` → poll → `files.content`
                written to disk. (No validation, no ordering, no exactly-once: the floor a script gets.)
* SDKs, bucket to bucket: the same script for an input that lives in the bucket, as ours does: the input fetched
                with the OSS SDK (`alibabacloud-oss-v2`) first, the answers put back after.

Peak RSS is the child's `ru_maxrss` from `os.wait4` (the child's own, without the emulator's), the functions and
the local runtime together for ours ("idle": the same child once the local stack runs, before any input).
Wall time runs from the input being in the bucket (ours) or on disk (SDK) to the results being complete; both
sides look every 0.1 s (ours: `GET /runs`, the SDK: `batches.retrieve`; both looked every 0.5 s before, which put
up to half a second of the bench's own polling into each figure). Ours then checks the output line by line against
the input's order, outside the clock and after the peak was taken. Goal: peak < 150 MB at any input size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from bailian_flow.emulator.process import spawn

ROOT = Path(__file__).resolve().parents[1]
TARGET_PEAK_MB = 150.0
SHARD_LINES = 50_000

OURS = """
import asyncio, json, os, resource, sys, time, urllib.request
from bailian_flow.local.stack import LocalStack
from bailian_flow.store import open_store

path, emulator_url, root = sys.argv[1:4]
KEY = "batches/bench/input.jsonl"
POLL = 0.1

def api(stack, route):
    request = urllib.request.Request(stack.http_url + route, headers={"Authorization": f"Bearer {stack.api_token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())

async def chunks(path):
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk

async def verify(store, run_id, path):
    # Output and errors together must be every input line once, each file in input order.
    order = {}
    with open(path, "rb") as handle:
        for number, line in enumerate(handle):
            order[json.loads(line)["custom_id"]] = number
    seen = 0
    for name in ("output.jsonl", "errors.jsonl"):
        last, buf = -1, b""
        async for chunk in store.stream(f"results/bench/input/{run_id}/{name}"):
            buf += chunk
            *lines, buf = buf.split(b"\\n")
            for line in lines:
                number = order[json.loads(line)["custom_id"]]
                assert number > last, f"{name}: line for input line {number} after {last}"
                last, seen = number, seen + 1
    assert seen == len(order), f"{seen} answers for {len(order)} requests"
    return seen

async def main():
    config = os.path.join(root, "s.yaml")
    # The stack points batch finish callbacks at its own webhook.
    async with LocalStack(config, emulator_url=emulator_url, timer_interval=1.0) as stack:
        idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store = open_store(store="oss", bucket=stack.bucket, endpoint=stack.emulator_url)
        await store.put_stream(KEY, chunks(path))
        started = time.perf_counter()
        run = None
        while True:
            await asyncio.sleep(POLL)
            runs = (await asyncio.to_thread(api, stack, "/runs?kind=batch"))["runs"]
            run = next((r for r in runs if r["source"]["key"] == KEY), None)
            if run and run["stage"] in ("DONE", "FAILED", "CANCELED"):
                break
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert run["stage"] == "DONE", run
        summary = json.loads(await store.get(f"results/bench/input/{run['run_id']}/summary.json"))
        checked = await verify(store, run["run_id"], path)
        await store.close()
    print(json.dumps({"wall": wall, "peak_in_run": peak, "idle": idle, "shards": len(summary["shards"]),
                      "checked": checked,
                      "completed": summary["completed"], "failed": summary["failed"]}))

asyncio.run(main())
"""

# By hand with the SDKs. With "bucket" the input lives in OSS, as ours does: it is put there first (outside the
# clock, as for ours), fetched with the OSS SDK, and the answers are put back.
SDK = """
import json, sys, time
import openai
path, emulator_url, out, where = sys.argv[1:5]
POLL = 0.1
if where == "bucket":
    import alibabacloud_oss_v2 as oss
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider("bench-id", "bench-secret")
    config.region = "cn-hangzhou"
    config.endpoint = emulator_url
    config.use_path_style = True
    config.disable_ssl = True
    store = oss.Client(config)
    store.put_object_from_file(oss.PutObjectRequest(bucket="bench-sdk", key="batches/input.jsonl"), path)
client = openai.OpenAI(api_key="sk-bench-0000", base_url=emulator_url + "/compatible-mode/v1")
started = time.perf_counter()
if where == "bucket":
    path = out + ".in"
    store.get_object_to_file(oss.GetObjectRequest(bucket="bench-sdk", key="batches/input.jsonl"), path)
with open(path, "rb") as handle:
    uploaded = client.files.create(file=handle, purpose="batch")
batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
while batch.status not in ("completed", "failed", "expired", "cancelled"):
    time.sleep(POLL)
    batch = client.batches.retrieve(batch.id)
client.files.content(batch.output_file_id).write_to_file(out)
if where == "bucket":
    store.put_object_from_file(oss.PutObjectRequest(bucket="bench-sdk", key="results/output.jsonl"), out)
print(json.dumps({"wall": time.perf_counter() - started, "status": batch.status}))
"""


def generate(path: Path, lines: int, line_kb: float) -> int:
    filler = "x" * max(1, int(line_kb * 1024) - 200)
    with path.open("wb") as handle:
        for number in range(1, lines + 1):
            line = {
                "custom_id": f"req-{number:07d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "qwen-plus",
                    "messages": [{"role": "user", "content": f"question {number} {filler}"}],
                },
            }
            handle.write(json.dumps(line).encode() + b"\n")
    return path.stat().st_size


def head(source: Path, target: Path, lines: int) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        for number, line in enumerate(src):
            if number >= lines:
                break
            dst.write(line)


def child(code: str, *args: str) -> tuple[dict[str, Any], float]:
    """Run `code` in a fresh interpreter; its JSON answer and its own peak RSS in MB."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=errors, cwd=ROOT)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            errors.seek(0)
            raise SystemExit(f"child failed ({status}): {errors.read().decode()[-3000:]}")
    return json.loads(output.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def reset(emulator_url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(emulator_url + "/_emulator/reset", method="POST"), timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=250_000)
    parser.add_argument("--line-kb", type=float, default=4.2)
    parser.add_argument("--skip-full", action="store_true", help="only the one-shard rows")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bf-batch-bench-") as tmp:
        work = Path(tmp)
        full, one = work / "input.jsonl", work / "shard.jsonl"
        size = generate(full, options.lines, options.line_kb)
        head(full, one, min(SHARD_LINES, options.lines))
        print(
            f"input: {options.lines:,} lines, {size / 2**20:,.0f} MiB; one shard: {one.stat().st_size / 2**20:,.0f} MiB"
        )
        emulator, url = spawn(work / "emulator", "--time-scale", "1000", stderr=subprocess.DEVNULL)
        rows: list[tuple[str, int, str, float, float | None, float, str]] = []

        def ours(path: Path, lines: int) -> None:
            got, _ = child(OURS, str(path), url, str(ROOT))
            # The peak is taken before the order check, which is the bench's work, not the functions'.
            note = f"{got['checked']:,} lines in order"
            rows.append(("ours (stack)", lines, str(got["shards"]), got["wall"], got["idle"], got["peak_in_run"], note))
            reset(url)

        try:
            if not options.skip_full:
                ours(full, options.lines)
            ours(one, min(SHARD_LINES, options.lines))
            got, peak = child(SDK, str(one), url, str(work / "sdk-output.jsonl"), "disk")
            rows.append(
                ("openai SDK by hand", min(SHARD_LINES, options.lines), "1", got["wall"], None, peak, "not checked")
            )
            reset(url)
            got, peak = child(SDK, str(one), url, str(work / "sdk-bucket-output.jsonl"), "bucket")
            note = "not checked; from and to the bucket"
            rows.append(("SDKs, bucket to bucket", min(SHARD_LINES, options.lines), "1", got["wall"], None, peak, note))
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)
    print(f"\n{'contender':<20} {'lines':>9} {'shards':>6} {'wall s':>8} {'idle MB':>8} {'peak MB':>8}  output")
    for name, lines, shards, wall, idle, peak, note in rows:
        idle_text = f"{idle:>8.0f}" if idle is not None else f"{'-':>8}"
        print(f"{name:<20} {lines:>9,} {shards:>6} {wall:>8.1f} {idle_text} {peak:>8.0f}  {note}")
    worst = max(row[5] for row in rows if row[0].startswith("ours"))
    verdict = "met" if worst < TARGET_PEAK_MB else "MISSED"
    print(f"\ntarget: functions' peak < {TARGET_PEAK_MB:.0f} MB at any size: {verdict} ({worst:.0f} MB)")


if __name__ == "__main__":
    main()
