"""Cold start as FC runs it: import + first invocation of each handler, next to `import dashscope`.

Builds the deploy layout with deploy/build.sh (dependencies in the layer tree, bailian_flow in the code tree, both
compiled at build time) for the local CPython, and installs dashscope the same way (pip --target, compiled). Then,
round after round, each handler runs in a fresh interpreter that cannot write bytecode (`python -B -s`, the
layout's PYTHONPATH: /code/python then the layer's /opt/python), against the emulator on loopback, chained the
way the triggers chain them: on_upload (a new dataset) -> on_file_ready (its marker) -> on_timer (the job has
finished) -> on_success (its marker) -> webhook (GET the run). The child times `import index` plus the handler
call; the anchor child times `import dashscope`. Medians over the rounds. Target: each handler <= 0.45x the anchor.

    python bench/cold_start.py [--rounds 5] [--no-bytecode] [--python PATH] [--baseline REV]

--no-bytecode: the layout as it was, no .pyc. --python: build and run the layout (and the anchor) with another
CPython, e.g. FC's runtimes python3.10 / python3.12; the emulator keeps running in this interpreter.
--baseline: also build the layout of another revision (`git archive REV`) and run both in every round, in
alternating order, so that before and after share the machine's load (a shared machine moves every figure).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

BUCKET = "cold-start"
TOKEN = "bench-token-1"
TARGET = 0.45
FUNCTIONS = ("on_upload", "on_file_ready", "on_timer", "on_success", "webhook")
# Wall time, and the process's CPU time (all its threads), which a loaded machine moves much less.
CHILD = """
import sys, time, json
t0, c0 = time.perf_counter(), time.process_time()
sys.path.insert(0, {code!r})
import index
t1, c1 = time.perf_counter(), time.process_time()
from bailian_flow.fc import make_context
context = make_context({name!r}, request_id="bench")
event = {event!r}
t2, c2 = time.perf_counter(), time.process_time()
result = index.handler(event, context)
t3, c3 = time.perf_counter(), time.process_time()
cpu = c1 - c0 + c3 - c2
out = {{"import": t1 - t0, "invoke": t3 - t2, "cpu": cpu, "modules": len(sys.modules), "result": str(result)[:300]}}
print(json.dumps(out))
"""
ANCHOR = """
import sys, time, json
t0, c0 = time.perf_counter(), time.process_time()
import dashscope
t1, c1 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "invoke": 0.0, "cpu": c1 - c0, "modules": len(sys.modules)}))
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


@dataclass(frozen=True)
class Layout:
    label: str
    functions: Path  # holds <function>/index.py
    pythonpath: str  # the code tree (/code/python), then the layer (/opt/python)


def build(root: Path, work: Path, bytecode: bool, python: str, label: str) -> Layout:
    """The deploy layout of the tree at `root`, built by its own deploy/build.sh under `work`."""
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
    subprocess.run([str(root / "deploy" / "build.sh")], check=True, env=env)
    code_tree, layer = work / "build" / "code" / "python", work / "build" / "layer" / "python"
    functions = work / "functions"
    for name in FUNCTIONS:
        (functions / name).mkdir(parents=True)
        shutil.copy(root / "functions" / name / "index.py", functions / name / "index.py")
        if bytecode:
            subprocess.run(
                [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(functions / name)],
                check=True,
            )
    if not bytecode:
        for tree in (code_tree, layer):
            for cache in list(tree.rglob("__pycache__")):
                shutil.rmtree(cache)
    return Layout(label, functions, f"{code_tree}{os.pathsep}{layer}")


def build_anchor(work: Path, bytecode: bool, python: str) -> str:
    """dashscope installed the same way (pip --target, compiled or not); returns its PYTHONPATH."""
    dashscope = work / "dashscope" / "python"
    # dashscope imports tomli below Python 3.11 without declaring it: the anchor must at least import.
    anchor = ["dashscope", "tomli"] if version_of(python).startswith("3.10.") else ["dashscope"]
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
        for cache in list(dashscope.rglob("__pycache__")):
            shutil.rmtree(cache)
    return str(dashscope)


def checkout(revision: str, into: Path) -> Path:
    """The committed tree of `revision` (of this repository), exported to `into`."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


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


def one_round(python: str, layout: Layout, env: dict[str, str], emu: Emulator) -> dict[str, Any]:
    key = f"datasets/bench/{uuid.uuid4().hex[:8]}/train.jsonl"
    emu.put(key, (ROOT / "samples" / "sft" / "train.jsonl").read_bytes())
    [record] = [r for r in emu.records() if r["oss"]["object"]["key"] == key]
    figures: dict[str, Any] = {}

    def run(name: str, event: bytes) -> dict[str, Any]:
        code = CHILD.format(code=str(layout.functions / name), name=name, event=event)
        figures[name] = child(python, code, layout.pythonpath, env)
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
    parser.add_argument("--baseline", metavar="REV", help="also run the layout of this git revision, alternating")
    args = parser.parse_args()
    from bailian_flow.emulator.process import spawn

    bytecode = not args.no_bytecode
    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    try:
        layouts = [build(ROOT, work / "current", bytecode, args.python, "this tree")]
        if args.baseline:
            source = checkout(args.baseline, work / "baseline-src")
            layouts.append(build(source, work / "baseline", bytecode, args.python, args.baseline))
        anchor_path = build_anchor(work, bytecode, args.python)
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
            rounds: dict[str, list[dict[str, Any]]] = {layout.label: [] for layout in layouts}
            anchors: list[dict[str, Any]] = []
            for number in range(args.rounds):
                # Alternating order: neither layout always runs first, right after the anchor, or on a warmer cache.
                for layout in layouts if number % 2 == 0 else layouts[::-1]:
                    rounds[layout.label].append(one_round(args.python, layout, env, emu))
                anchors.append(child(args.python, ANCHOR, anchor_path, env))
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rounds, anchors, bytecode=bytecode, version=version_of(args.python))


def ms(figures: list[dict[str, Any]], part: str) -> float:
    return statistics.median(figure[part] for figure in figures) * 1000


def report(
    rounds: dict[str, list[dict[str, Any]]], anchors: list[dict[str, Any]], *, bytecode: bool, version: str
) -> None:
    anchor, anchor_cpu = ms(anchors, "import"), ms(anchors, "cpu")
    layout = "compiled at build time" if bytecode else "no bytecode shipped"
    for label, figures in rounds.items():
        print(f"{label}: python -B, {layout}, Python {version}, medians of {len(figures)} rounds (ms)")
        header = f"{'import':>8} {'1st call':>9} {'total':>8} {'x anchor':>9} {'cpu':>6} {'x anchor':>9} {'modules':>8}"
        print(f"{'':<18} {header}")
        worst = worst_cpu = 0.0
        for name in FUNCTIONS:
            runs = [figure[name] for figure in figures]
            imported, invoked, cpu = ms(runs, "import"), ms(runs, "invoke"), ms(runs, "cpu")
            total = imported + invoked
            worst, worst_cpu = max(worst, total / anchor), max(worst_cpu, cpu / anchor_cpu)
            modules = statistics.median(run["modules"] for run in runs)
            print(
                f"{name:<18} {imported:>8.0f} {invoked:>9.0f} {total:>8.0f} {total / anchor:>8.2f}x"
                f" {cpu:>6.0f} {cpu / anchor_cpu:>8.2f}x {modules:>8.0f}"
            )
        modules = statistics.median(run["modules"] for run in anchors)
        print(
            f"{'import dashscope':<18} {anchor:>8.0f} {0:>9.0f} {anchor:>8.0f} {1:>8.2f}x"
            f" {anchor_cpu:>6.0f} {1:>8.2f}x {modules:>8.0f}"
        )
        verdict = "meets" if worst <= TARGET else "misses"
        print(f"slowest handler / anchor = {worst:.2f}x wall, {worst_cpu:.2f}x cpu", end=" ")
        print(f"({verdict} the target <= {TARGET:.2f}x)\n")


if __name__ == "__main__":
    main()
