"""Cold start as FC runs it: import + first invocation of each handler, next to `import dashscope`.

Builds the deploy layout with deploy/build.sh (dependencies in the layer tree, bailian_flow in the code tree, both
compiled at build time) for the local CPython, and installs dashscope the same way (pip --target, compiled). Then,
round after round, each handler runs in a fresh interpreter that cannot write bytecode (`python -B -s`, the
layout's PYTHONPATH: /code/python then the layer's /opt/python), against the emulator on loopback, chained the
way the triggers chain them: on_upload (a new dataset) -> on_file_ready (its marker) -> on_timer (the job has
finished) -> on_success (its marker) -> webhook (GET the run). The child times `import index` plus the handler
call; the anchor child times `import dashscope`. Medians over the rounds. Target: each handler <= 0.45x the anchor.

    python bench/cold_start.py [--rounds 5] [--no-bytecode] [--python PATH]

--no-bytecode: the layout as it was, no .pyc. --python: build and run the layout (and the anchor) with another
CPython, e.g. FC's runtimes python3.10 / python3.12; the emulator keeps running in this interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

BUCKET = "cold-start"
TOKEN = "bench-token-1"
TARGET = 0.45
FUNCTIONS = ("on_upload", "on_file_ready", "on_timer", "on_success", "webhook")
CHILD = """
import sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, {code!r})
import index
t1 = time.perf_counter()
from bailian_flow.fc import make_context
context = make_context({name!r}, request_id="bench")
event = {event!r}
t2 = time.perf_counter()
result = index.handler(event, context)
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "invoke": t3 - t2, "modules": len(sys.modules), "result": str(result)[:300]}}))
"""
ANCHOR = """
import sys, time, json
t0 = time.perf_counter()
import dashscope
t1 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "invoke": 0.0, "modules": len(sys.modules)}))
"""


def http(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        data = response.read()
    return json.loads(data) if data.strip().startswith((b"{", b"[")) else data


def version_of(python: str) -> str:
    """The interpreter's full version, e.g. 3.12.1."""
    out = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"{python} is not a working Python interpreter")
    return out.stdout.decode().strip()


def build(work: Path, bytecode: bool, python: str) -> tuple[Path, Path, Path]:
    """(code dir holding the functions, the code tree /code/python, the layer tree /opt/python)."""
    version = ".".join(version_of(python).split(".")[:2])
    env = {
        **os.environ,
        "BAILIAN_FLOW_BUILD_ANY_PYTHON": "1",
        "BAILIAN_FLOW_RUNTIME": f"python{version}",
        "BAILIAN_FLOW_BUILD_DIR": str(work / "build"),
        "BAILIAN_FLOW_BUILD_ONLY": "1",
        "PYTHON": python,
        "FC_PYTHON": python,
    }
    subprocess.run([str(ROOT / "deploy" / "build.sh")], check=True, env=env)
    code_tree, layer = work / "build" / "code" / "python", work / "build" / "layer" / "python"
    functions = work / "functions"
    for name in FUNCTIONS:
        (functions / name).mkdir(parents=True)
        shutil.copy(ROOT / "functions" / name / "index.py", functions / name / "index.py")
        if bytecode:
            subprocess.run(
                [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(functions / name)],
                check=True,
            )
    dashscope = work / "dashscope" / "python"
    # dashscope imports tomli below Python 3.11 without declaring it: the anchor must at least import.
    anchor = ["dashscope", "tomli"] if version == "3.10" else ["dashscope"]
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--target", str(dashscope), "--only-binary=:all:", *anchor],
        check=True,
    )
    if bytecode:
        subprocess.run(
            [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(dashscope)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    else:
        for tree in (code_tree, layer, dashscope):
            for cache in list(tree.rglob("__pycache__")):
                shutil.rmtree(cache)
    return functions, code_tree, layer


def child(interpreter: str, code: str, pythonpath: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [interpreter, "-B", "-s", "-c", code],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": pythonpath},
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class Emulator:
    def __init__(self, url: str) -> None:
        self.url = url
        self.seen = int(http(f"{url}/_emulator/oss/events?after=0&wait=0")["last_seq"])

    def put(self, key: str, data: bytes) -> None:
        http(f"{self.url}/{BUCKET}/{key}", "PUT", data)

    def records(self) -> list[dict[str, Any]]:
        body = http(f"{self.url}/_emulator/oss/events?after={self.seen}&wait=0")
        self.seen = body["last_seq"]
        return [event["record"] for event in body["events"]]

    def marker(self, suffix: str) -> bytes:
        found = [r for r in self.records() if r["oss"]["object"]["key"].endswith(suffix)]
        assert found, f"no {suffix} event"
        return json.dumps({"events": [found[-1]]}).encode()


def http_event(path: str) -> bytes:
    return json.dumps(
        {
            "version": "v1",
            "rawPath": path,
            "body": "",
            "isBase64Encoded": False,
            "headers": {"authorization": f"Bearer {TOKEN}"},
            "queryParameters": {},
            "requestContext": {"http": {"method": "GET", "path": path}, "requestId": "bench"},
        }
    ).encode()


def one_round(
    python: str, functions: Path, pythonpath: str, anchor_path: str, env: dict[str, str], emu: Emulator
) -> dict[str, Any]:
    key = f"datasets/bench/{uuid.uuid4().hex[:8]}/train.jsonl"
    emu.put(key, (ROOT / "samples" / "sft" / "train.jsonl").read_bytes())
    [record] = [r for r in emu.records() if r["oss"]["object"]["key"] == key]
    figures: dict[str, Any] = {}

    def run(name: str, event: bytes) -> dict[str, Any]:
        code = CHILD.format(code=str(functions / name), name=name, event=event)
        figures[name] = child(python, code, pythonpath, env)
        return figures[name]

    run("on_upload", json.dumps({"events": [record]}).encode())
    run("on_file_ready", emu.marker("-file-ready.json"))
    http(
        f"{emu.url}/_emulator/clock",
        "POST",
        json.dumps({"advance": 7200}).encode(),
        {"Content-Type": "application/json"},
    )
    run("on_timer", json.dumps({"triggerTime": "2026-11-30T00:00:00Z", "triggerName": "t", "payload": "p"}).encode())
    run("on_success", emu.marker("-job-succeeded.json"))
    run("webhook", http_event("/runs"))
    figures["import dashscope"] = child(python, ANCHOR, anchor_path, env)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-bytecode", action="store_true", help="ship no .pyc (the layout before this change)")
    parser.add_argument(
        "--python",
        default=getattr(sys, "_base_executable", sys.executable),
        help="the CPython to build for and run the handlers with (default: this one, outside any venv)",
    )
    args = parser.parse_args()
    from bailian_flow.emulator.process import spawn

    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    try:
        functions, code_tree, layer = build(work, bytecode=not args.no_bytecode, python=args.python)
        process, url = spawn(work / "emulator", "--time-scale", "100")
        try:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(work),
                "DASHSCOPE_API_KEY": "sk-bench",
                "DASHSCOPE_BASE_URL": url,
                "BAILIAN_FLOW_BUCKET": BUCKET,
                "BAILIAN_FLOW_OSS_ENDPOINT": url,
                "BAILIAN_FLOW_API_TOKEN": TOKEN,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-ak",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-secret",
            }
            emu = Emulator(url)
            pythonpath = f"{code_tree}{os.pathsep}{layer}"
            anchor_path = str(work / "dashscope" / "python")
            rounds = [one_round(args.python, functions, pythonpath, anchor_path, env, emu) for _ in range(args.rounds)]
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rounds, bytecode=not args.no_bytecode, version=version_of(args.python))


def report(rounds: list[dict[str, Any]], *, bytecode: bool, version: str) -> None:
    def median(name: str, part: str) -> float:
        return statistics.median(r[name][part] for r in rounds) * 1000

    anchor = median("import dashscope", "import")
    layout = "compiled at build time" if bytecode else "no bytecode shipped"
    print(f"python -B, {layout}, Python {version}, medians of {len(rounds)} rounds (ms)")
    print(f"{'':<18} {'import':>8} {'1st call':>9} {'total':>8} {'x anchor':>9} {'modules':>8}")
    worst = 0.0
    for name in (*FUNCTIONS, "import dashscope"):
        imported, invoked = median(name, "import"), median(name, "invoke")
        total = imported + invoked
        ratio = total / anchor
        if name != "import dashscope":
            worst = max(worst, ratio)
        modules = statistics.median(r[name]["modules"] for r in rounds)
        print(f"{name:<18} {imported:>8.0f} {invoked:>9.0f} {total:>8.0f} {ratio:>8.2f}x {modules:>8.0f}")
    verdict = "meets" if worst <= TARGET else "misses"
    print(f"slowest handler / anchor = {worst:.2f}x ({verdict} the target <= {TARGET:.2f}x)")


if __name__ == "__main__":
    main()
