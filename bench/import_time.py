"""Import cost of the client next to its own dependencies and to the dashscope SDK.

Each measurement is a fresh interpreter (nothing cached in sys.modules; the OS file cache is warm for all
alike), timing the import statement itself with perf_counter; the cases are interleaved round after round so that
load from other processes hits them alike, and the median of N rounds is printed with its ratio to
`import aiohttp, pydantic`. Target: `import bailian_flow.client` <= 1.15x that baseline.

    python bench/import_time.py [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

BASELINE = "import aiohttp, pydantic"
CASES: list[tuple[str, str]] = [
    ("baseline", BASELINE),
    ("aiohttp + BaseModel", "import aiohttp; from pydantic import BaseModel"),
    ("package", "import bailian_flow.client"),
    ("client class", "from bailian_flow.client import BailianClient"),
    ("client + fine_tunes", "from bailian_flow.client import BailianClient; BailianClient(api_key='k').fine_tunes"),
    (
        "client + every family",
        "from bailian_flow.client import BailianClient; c = BailianClient(api_key='k'); "
        "[getattr(c, n) for n in ('fine_tunes', 'deployments', 'custom_models', 'files', 'compat_files', "
        "'batches', 'responses', 'uploads')]",
    ),
    ("dashscope", "import dashscope"),
]
TARGET = 1.15


def measure(statement: str) -> float:
    probe = f"import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="rounds; the median is reported")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for _ in range(args.runs):
        for name, statement in CASES:
            samples[name].append(measure(statement))
    base = statistics.median(samples["baseline"])
    print(f"python {sys.version.split()[0]}, {args.runs} fresh interpreters per case, median import time")
    print(f"{'case':<24}{'statement':<58}{'ms':>8}{'x base':>9}")
    for name, statement in CASES:
        median = statistics.median(samples[name])
        shown = statement if len(statement) <= 56 else statement[:53] + "..."
        print(f"{name:<24}{shown:<58}{median * 1000:>8.1f}{median / base:>8.2f}x")
    package = statistics.median(samples["client class"]) / base
    verdict = "meets" if package <= TARGET else "MISSES"
    print(
        f"\n`from bailian_flow.client import BailianClient` is {package:.2f}x `{BASELINE}`: {verdict} "
        f"the <= {TARGET}x target"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
