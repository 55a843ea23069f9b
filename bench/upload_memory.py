"""Peak memory and wall time of uploading one large JSONL: our client against the dashscope SDK.

    python bench/upload_memory.py [--size-mb 200] [--repeat 5] [--server emulator|sink|both]

Generates a JSONL of SFT records in a temp dir, starts the emulator on loopback, then uploads the file through
each contender, every upload in a fresh interpreter so no run inherits another's heap:

* ours:       `BailianClient().files.upload(path)` (streams the file: `sendfile` on a plain TCP connection);
* dashscope:  `dashscope.Files.upload(path, purpose="fine-tune")`, the call the target is measured against
              (requests; the SDK builds the whole multipart body in memory, then sends it);
* dashscope, default purpose: the same call with the SDK's default `purpose=FilePurpose.fine_tune`
              ("fine_tune"), for which the SDK first json-parses every line of the file. Shown for reference
              only: our client does not check lines, so the target compares against the call without it.
              (The SDK does not send `purpose` at all, so both calls put the same bytes on the wire.)

Peak RSS is the child's `ru_maxrss` as the kernel reports it when the child is reaped: `os.wait4` returns the
same `struct rusage` as `resource.getrusage(RUSAGE_CHILDREN)` but for that child alone (RUSAGE_CHILDREN keeps a
running maximum over every child, so it could not tell two sequential runs apart). "idle" is the same
interpreter after its imports, before uploading, so the upload's own cost is the difference. Time is the upload
call alone, interpreter start and imports excluded on both sides: dashscope imports everything with `import
dashscope`, our client imports a resource family's modules on first use, so the child touches `client.files`
before starting the clock (that import is ~60 ms; the first request's model building stays inside the clock).
Contenders take turns round by round, so background load drifting during the run hits them alike. Medians
over --repeat rounds. Targets: our peak < 100 MB and our upload >= 3x faster than the SDK's.

The emulator stores what it receives (multipart parsing, md5 and a disk write, in Python, on the same cores as
the client), which caps every contender at its ingest rate. The same uploads are therefore also timed against a
sink (`--server sink`): a bare aiohttp endpoint that reads and discards the body, so the clients' own costs show.
Two floors are printed with the emulator's table: the md5 of the file on one core (the emulator answers only
once it has hashed every byte, so no upload to it can take less) and the SDK's body build alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bailian_flow.emulator.process import spawn

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
        files = client.files  # imports the files family (dashscope's imports are outside its clock too)
        if idle == "1":
            return 0.0, ""
        started = time.perf_counter()
        uploaded = await files.upload(path, purpose="fine-tune")
        return time.perf_counter() - started, uploaded.file_id
seconds, file_id = asyncio.run(main())
print(seconds, file_id)
""",
    # How long the SDK spends building its request body before sending a byte (what requests does inside
    # session.post for `files=`), timed alone for the explanation printed under the emulator's table.
    "dashscope body": """
import sys, time
path = sys.argv[1]
from requests.models import RequestEncodingMixin
started = time.perf_counter()
with open(path, "rb") as handle:
    body, _ = RequestEncodingMixin._encode_files([("files", ("train.jsonl", handle, None))], None)
print(time.perf_counter() - started, len(body))
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
    ("dashscope, default purpose", "dashscope", ["fine_tune"]),  # + the SDK's line-by-line JSON check
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
    return spawn(data_dir, stderr=subprocess.DEVNULL)


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
        idle = [run_child(kind, extra, path, url, idle=True)[1] for _, kind, extra in CONTENDERS]
        times: list[list[float]] = [[] for _ in CONTENDERS]
        peaks: list[list[float]] = [[] for _ in CONTENDERS]
        for _ in range(repeat):  # round by round: drifting background load is shared by all contenders
            for index, (_, kind, extra) in enumerate(CONTENDERS):
                seconds, peak = run_child(kind, extra, path, url, idle=False)
                assert seconds is not None
                times[index].append(seconds)
                peaks[index].append(peak)
                reset(url)  # drop the stored copy: disk stays bounded whatever --repeat
    finally:
        process.terminate()
        process.wait(timeout=10)
    return [
        (label, idle[index], statistics.median(peaks[index]), statistics.median(times[index]))
        for index, (label, _, _) in enumerate(CONTENDERS)
    ]


def md5_seconds(path: Path, repeat: int) -> float:
    """Median time to md5 as many bytes as the file on one core (hashing alone, no reads): MD5 is sequential,
    so this is the least any upload to the emulator can take."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        block = handle.read(1 << 20)  # MD5's speed does not depend on the bytes
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        digest = hashlib.md5(usedforsecurity=False)
        for _ in range(size // len(block)):
            digest.update(block)
        digest.update(block[: size % len(block)])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sdk_body_seconds(path: Path, repeat: int) -> float:
    """Median time the SDK takes to build its request body, in a fresh interpreter like the uploads."""
    times = []
    for _ in range(repeat):
        argv = [sys.executable, "-c", CHILD_CODE["dashscope body"], str(path)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        times.append(float(out.split()[0]))
    return statistics.median(times)


def explain(rows: list[tuple[str, float, float, float]], md5_s: float, body_s: float) -> None:
    sdk_s = rows[1][3]
    print(
        f"floors: md5 of the file on one core {md5_s:.2f} s (the emulator hashes every byte before it answers); "
        f"the SDK builds its body in {body_s:.2f} s before sending.\n"
        f"an upload at the md5 floor would be {sdk_s / md5_s:.1f}x faster than dashscope Files.upload here"
    )


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
    parser.add_argument("--repeat", type=int, default=5, help="uploads per contender; medians are shown")
    parser.add_argument("--server", choices=["emulator", "sink", "both"], default="both")
    args = parser.parse_args()
    servers = ["emulator", "sink"] if args.server == "both" else [args.server]
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        root = Path(tmp)
        path = root / "train.jsonl"
        size = make_jsonl(path, args.size_mb)
        results = {server: bench(server, path, size, args.repeat, root) for server in servers}
        md5_s = md5_seconds(path, args.repeat)
        body_s = sdk_body_seconds(path, args.repeat)
    print(
        f"upload of a {size / 2**20:.0f} MiB JSONL over loopback; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs; median of {args.repeat}; peak = max RSS of the uploading process"
    )
    for server, rows in results.items():
        report(server, rows, size)
        if server == "emulator":
            explain(rows, md5_s, body_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
