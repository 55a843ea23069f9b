"""`bailian-flow` console script: a thin dispatcher that imports each command lazily (start-up stays fast)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# command path -> (module, help). Each module exposes add_arguments(parser) and run(args) -> int.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("files", "upload"): ("bailian_flow.client.cli", "upload a file to Bailian through the client"),
    ("dev",): ("bailian_flow.local.cli", "run the functions locally under the triggers s.yaml declares"),
    ("demo",): ("bailian_flow.local.demo", "run the main job end to end against the local stack"),
    ("emulator",): ("bailian_flow.emulator.__main__", "run the Bailian + OSS emulator"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bailian-flow", description=__doc__)
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {
        (): parser.add_subparsers(dest="command", required=True)
    }
    for path, (module_name, help_text) in COMMANDS.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                group_parser = groups[prefix[:-1]].add_parser(prefix[-1])
                groups[prefix] = group_parser.add_subparsers(dest=f"command_{depth}", required=True)
        sub = groups[path[:-1]].add_parser(path[-1], help=help_text)
        sub.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Resolve the command first, then let its module add its own options and parse again.
    known, _ = parser.parse_known_args(args_list)
    module = importlib.import_module(known._module)
    command_parser = _find_parser(parser, known._module)
    module.add_arguments(command_parser)
    args = parser.parse_args(args_list)
    result: int = module.run(args)
    return result


def _find_parser(parser: argparse.ArgumentParser, module_name: str) -> argparse.ArgumentParser:
    stack = [parser]
    while stack:
        current = stack.pop()
        if current.get_default("_module") == module_name:
            return current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    raise LookupError(module_name)


if __name__ == "__main__":
    raise SystemExit(main())
