"""`make demo` from a fresh clone: how long a new user waits, cold (creates .venv) and warm, next to the anchor.

    python bench/demo_install.py [--repo PATH]

Clones the repository (its committed HEAD) into a temporary directory, runs `make demo` twice and prints the
wall times beside issue #8's figures for the old `make demo`, which installed the whole test toolchain.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANCHOR_COLD = 135.0  # issue #8: "2 min 15 s the first time"
ANCHOR_WARM = 18.0  # "18 s after"
TARGET_COLD = 60.0  # "from a fresh clone under a minute"


def _timed_demo(clone: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"make demo failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bailian-flow-demo-") as temporary:
        clone = Path(temporary) / "clone"
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        cold = _timed_demo(clone)
        warm = _timed_demo(clone)
        installed = subprocess.run(
            [str(clone / ".venv/bin/python"), "-m", "pip", "list", "--format=freeze"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    extras = [
        name
        for name in ("ruff", "mypy", "pytest", "dashscope", "openai", "playwright")
        if f"\n{name}==" in "\n" + installed
    ]
    print(f"{'':<22}{'this tree':>12}{'anchor (issue #8)':>20}{'target':>10}")
    print(f"{'make demo, fresh clone':<22}{cold:>10.1f} s{ANCHOR_COLD:>18.1f} s{TARGET_COLD:>8.0f} s")
    print(f"{'make demo, again':<22}{warm:>10.1f} s{ANCHOR_WARM:>18.1f} s")
    print(f"test tools or vendor SDKs installed: {', '.join(extras) or 'none'}")


if __name__ == "__main__":
    main()
