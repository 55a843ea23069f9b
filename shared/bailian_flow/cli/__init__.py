"""`bailian-flow`: the operator's command line (click + rich, imported by nothing but this package).

Each command lives in its own module, imported only when that command runs, so `bailian-flow runs list` does not
pay for the emulator or the local stack. Exit codes (for scripts):

  0 ok · 1 invalid input, failed check or a run that ended FAILED/CANCELED · 2 usage error · 3 not found ·
  4 unreachable or not configured · 130 interrupted
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from bailian_flow.cli._app import run_cli
    except ImportError as exc:  # click or rich missing: the base package is installed without the CLI extra
        print(
            f"bailian-flow: the command line needs its extra ({exc.name} is missing): pip install 'bailian-flow[cli]'",
            file=sys.stderr,
        )
        return 4
    return run_cli(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
