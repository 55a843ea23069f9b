"""Peak memory and wall time of uploading one large JSONL: our client against the dashscope SDK.

    python bench/upload_memory.py [--size-mb 200] [--repeat 3]

Generates a JSONL of SFT records in a temp dir, starts the emulator on loopback, then uploads the file through
each contender, every upload in a fresh interpreter so no run inherits another's heap:

* ours:       `BailianClient().files.upload(path)` (streams the file through aiohttp, chunk by chunk);
* dashscope:  `dashscope.Files.upload(path, purpose="fine-tune")` (requests; the SDK first json-parses every
              line, then builds the whole multipart body in memory);
* dashscope, purpose=batch: the same SDK call without its JSONL check, so the comparison of transport alone is
              visible too.

Peak RSS is the child's `ru_maxrss` as the kernel reports it when the child is reaped: `os.wait4` returns the
same `struct rusage` as `resource.getrusage(RUSAGE_CHILDREN)` but for that child alone (RUSAGE_CHILDREN keeps a
running maximum over every child, so it could not tell two sequential runs apart). "idle" is the same
interpreter after its imports, before uploading, so the upload's own cost is the difference. Time is the upload
call alone (interpreter start and imports excluded). Medians over --repeat runs. Targets: our peak < 100 MB and
our upload >= 3x faster than the SDK's.

The emulator stores what it receives (multipart parsing, md5 and a disk write, in Python, on the same cores as
the client), which caps every contender at its ingest rate. The same uploads are therefore also timed against a
sink (`--server sink`): a bare aiohttp endpoint that reads and discards the body, so the clients' own costs show.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

API_KEY = "sk-bench-0000"
TARGET_PEAK_MB = 100.0
TARGET_SPEEDUP = 3.0

CHILD_CODE = {
    "ours": """
import asyncio, sys, time
from bailian_flow.client import BailianClient
path, url, key, idle = sys.argv[1:5]
async def main():
    async with BailianClient(api_key=key, base_url=url) as client:
        started = time.perf_counter()
        uploaded = await client.files.upload(path, purpose="fine-tune")
        return time.perf_counter() - started, uploaded.file_id
if idle == "1":
    raise SystemExit(0)
seconds, file_id = asyncio.run(main())
print(seconds, file_id)
""",
    "dashscope": """
import os, sys, time
path, url, key, idle, purpose = sys.argv[1:6]
os.environ["DASHSCOPE_HTTP_BASE_URL"] = url + "/api/v1"
import dashscope
dashscope.base_http_api_url = url + "/api/v1"
if idle == "1":
    raise SystemExit(0)
started = time.perf_counter()
response = dashscope.Files.upload(file_path=path, purpose=purpose, api_key=key)
seconds = time.perf_counter() - started
if response.status_code != 200:
    raise SystemExit(f"upload failed: {response}")
print(seconds, "ok")
""",
}

CONTENDERS = [
    ("ours (bailian_flow.client)", "ours", []),
    ("dashscope Files.upload", "dashscope", ["fine-tune"]),
    ("dashscope, purpose=batch", "dashscope", ["batch"]),
]


def make_jsonl(path: Path, size_mb: int) -> int:
    """Distinct, valid SFT records until `size_mb` MiB; written in 1 MiB blocks."""
    target = size_mb * 2**20
    written = 0
    n = 0
    with path.open("wb") as handle:
        while written < target:
            block = []
            for _ in range(2000):
                record = {
                    "messages": [
                        {"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": f"Question number {n}: what is {n} times 7?"},
                        {"role": "assistant", "content": f"{n} times 7 is {n * 7}. " + "Explained. " * 20},
                    ]
                }
                block.append(json.dumps(record))
                n += 1
            data = ("\n".join(block) + "\n").encode()
            handle.write(data)
            written += len(data)
    return written


def start_emulator(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bailian_flow.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "ready" not in line:
        process.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[-1]


SINK_CODE = """
import sys
from aiohttp import web

async def upload(request):
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    return web.json_response({"request_id": "sink", "data": {"uploaded_files": [{"file_id": f"sink-{size}",
                                                                                "name": "train.jsonl"}]}})

async def reset(request):
    return web.json_response({})

app = web.Application(client_max_size=2**40)
app.router.add_post("/api/v1/files", upload)
app.router.add_post("/_emulator/reset", reset)
app.router.add_post("/_emulator/files/limits", reset)
runner = web.AppRunner(app)

async def main():
    import asyncio
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"sink ready http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()

import asyncio
asyncio.run(main())
"""


def start_sink() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", SINK_CODE], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "ready" not in line:
        process.kill()
        raise RuntimeError(f"sink did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[-1]


def raise_size_limits(url: str, size: int) -> None:
    body = json.dumps({"fine-tune": size * 2, "batch": size * 2}).encode()
    request = urllib.request.Request(
        f"{url}/_emulator/files/limits", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/_emulator/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def run_child(kind: str, extra: list[str], path: Path, url: str, idle: bool) -> tuple[float | None, float]:
    """(upload seconds or None when idle, peak RSS in MiB) of one fresh interpreter."""
    argv = [sys.executable, "-c", CHILD_CODE[kind], str(path), url, API_KEY, "1" if idle else "0", *extra]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({process.returncode}): {out!r}")
    peak_mib = usage.ru_maxrss / 1024  # Linux reports KiB
    return (None if idle else float(out.split()[0])), peak_mib


def bench(server: str, path: Path, size: int, repeat: int, root: Path) -> list[tuple[str, float, float, float]]:
    process, url = start_emulator(root / "emulator") if server == "emulator" else start_sink()
    try:
        raise_size_limits(url, size)
        rows = []
        for label, kind, extra in CONTENDERS:
            _, idle_mib = run_child(kind, extra, path, url, idle=True)
            times, peaks = [], []
            for _ in range(repeat):
                seconds, peak = run_child(kind, extra, path, url, idle=False)
                assert seconds is not None
                times.append(seconds)
                peaks.append(peak)
                reset(url)  # drop the stored copy: disk stays bounded whatever --repeat
            rows.append((label, idle_mib, statistics.median(peaks), statistics.median(times)))
    finally:
        process.terminate()
        process.wait(timeout=10)
    return rows


def report(server: str, rows: list[tuple[str, float, float, float]], size: int) -> None:
    ours, sdk = rows[0], rows[1]
    print(f"\nserver: {server}")
    print(
        f"{'contender':<30}{'idle MiB':>10}{'peak MiB':>10}{'upload s':>10}{'MiB/s':>9}{'mem ratio':>11}{'speedup':>9}"
    )
    for label, idle_mib, peak, seconds in rows:
        print(
            f"{label:<30}{idle_mib:>10.1f}{peak:>10.1f}{seconds:>10.2f}{size / 2**20 / seconds:>9.0f}"
            f"{peak / ours[2]:>10.1f}x{seconds / ours[3]:>8.1f}x"
        )
    print(
        f"targets: our peak < {TARGET_PEAK_MB:.0f} MB -> {ours[2]:.1f} MiB "
        f"({'met' if ours[2] < TARGET_PEAK_MB else 'MISSED'}); "
        f">= {TARGET_SPEEDUP:.0f}x faster than dashscope Files.upload -> {sdk[3] / ours[3]:.1f}x "
        f"({'met' if sdk[3] / ours[3] >= TARGET_SPEEDUP else 'MISSED'})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200, help="size of the generated JSONL in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="uploads per contender; medians are shown")
    parser.add_argument("--server", choices=["emulator", "sink", "both"], default="both")
    args = parser.parse_args()
    servers = ["emulator", "sink"] if args.server == "both" else [args.server]
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        root = Path(tmp)
        path = root / "train.jsonl"
        size = make_jsonl(path, args.size_mb)
        results = {server: bench(server, path, size, args.repeat, root) for server in servers}
    print(
        f"upload of a {size / 2**20:.0f} MiB JSONL over loopback; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs; median of {args.repeat}; peak = max RSS of the uploading process"
    )
    for server, rows in results.items():
        report(server, rows, size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
