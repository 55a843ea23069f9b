"""Streaming validator speed next to a bare `for line in f: json.loads(line)` loop over the same file.

Generates a ~290 MB SFT JSONL (the repository's samples, varied so no two lines are equal; not committed), then
times, each in a fresh interpreter, round after round interleaved so that load from other processes hits all alike:
- the anchor: `for line in f: json.loads(line)` (binary and text mode; the faster of the two is the anchor),
- `validate_file(path, "sft")`, the streaming validator the pipeline runs, with every rule.
Prints the median speed (MB/s) of each, the ratio to the anchor, and each child's peak RSS (memory must stay flat).
Target: validator >= 1.0x the anchor.

    python bench/validate_speed.py [--size-mb 290] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.0

CASES = {
    "json.loads, binary": (
        "import json, time\nt = time.perf_counter()\n"
        "with open(PATH, 'rb') as f:\n    for line in f: json.loads(line)\n"
        "print(time.perf_counter() - t)"
    ),
    "json.loads, text": (
        "import json, time\nt = time.perf_counter()\n"
        "with open(PATH, encoding='utf-8') as f:\n    for line in f: json.loads(line)\n"
        "print(time.perf_counter() - t)"
    ),
    "validate_file (sft)": (
        "import time\nfrom bailian_flow.validate import validate_file\nt = time.perf_counter()\n"
        "stats = validate_file(PATH, 'sft')\nassert stats.records > 0\n"
        "print(time.perf_counter() - t)"
    ),
}
ANCHORS = ("json.loads, binary", "json.loads, text")


def generate(path: Path, size_mb: int) -> int:
    """SFT records from the samples, each made unique by a counter so nothing is cached by identity."""
    samples = [json.loads(line) for line in (ROOT / "samples" / "sft" / "train.jsonl").read_text().splitlines()]
    target = size_mb * 1_000_000
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        index = 0
        while written < target:
            record = samples[index % len(samples)]
            messages = [dict(m) for m in record["messages"]]
            messages[-1]["content"] = f"{messages[-1]['content']} (#{index})"
            line = json.dumps({"messages": messages}, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode())
            index += 1
    return path.stat().st_size


def run(case: str, path: Path) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one case in a fresh interpreter."""
    code = f"PATH = {str(path)!r}\n" + CASES[case]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    if status != 0:
        raise SystemExit(f"{case} failed")
    return float(out.strip().splitlines()[-1]), usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=290)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated file (its path is printed)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="validate-speed-"))
    path = directory / "train.jsonl"
    size = generate(path, args.size_mb)
    print(f"file: {size / 1e6:.0f} MB, {sum(1 for _ in path.open('rb')):,} lines, Python {sys.version.split()[0]}")
    times: dict[str, list[float]] = {case: [] for case in CASES}
    peaks: dict[str, list[int]] = {case: [] for case in CASES}
    try:
        for _ in range(args.rounds):
            for case in CASES:
                seconds, peak = run(case, path)
                times[case].append(seconds)
                peaks[case].append(peak)
    finally:
        if not args.keep:
            path.unlink()
            directory.rmdir()
        else:
            print(f"kept {path}")
    speed = {case: size / 1e6 / statistics.median(values) for case, values in times.items()}
    anchor = max(ANCHORS, key=lambda case: speed[case])
    print(f"{'case':<22} {'MB/s':>8} {'x anchor':>9} {'peak RSS':>10}")
    for case in CASES:
        mark = "  (anchor)" if case == anchor else ""
        rss = max(peaks[case]) / 1024
        print(f"{case:<22} {speed[case]:>8.0f} {speed[case] / speed[anchor]:>8.2f}x {rss:>7.0f} MiB{mark}")
    ratio = speed["validate_file (sft)"] / speed[anchor]
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"validator / anchor = {ratio:.2f}x ({verdict} the target >= {TARGET:.1f}x; medians of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
