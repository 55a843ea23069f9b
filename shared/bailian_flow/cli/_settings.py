"""Per-run settings given on the command line: `--settings FILE` (a sidecar's YAML) or `--set key=value`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from bailian_flow.cli._app import EXIT_INVALID, CliError

MAX_SETTINGS_BYTES = 64 * 1024  # a sidecar is a dozen lines

settings_options = [
    click.option(
        "--settings",
        "settings_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A YAML file of run settings (the sidecar's format).",
    ),
    click.option(
        "--set",
        "assignments",
        multiple=True,
        metavar="KEY=VALUE",
        help="One setting, e.g. model=qwen3-14b or hyper_parameters.n_epochs=2 (repeatable).",
    ),
]


def with_settings_options(command: Any) -> Any:
    for option in reversed(settings_options):
        command = option(command)
    return command


def parse_settings(settings_file: Path | None, assignments: Sequence[str]) -> dict[str, Any] | None:
    """The settings both options describe, or None when neither is given. Values are YAML scalars (2 → int)."""
    import yaml

    if settings_file is not None and assignments:
        raise CliError("give either --settings FILE or --set KEY=VALUE, not both", EXIT_INVALID)
    if settings_file is not None:
        raw = settings_file.read_bytes()
        if len(raw) > MAX_SETTINGS_BYTES:
            raise CliError(f"{settings_file}: larger than {MAX_SETTINGS_BYTES // 1024} KiB", EXIT_INVALID)
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise CliError(f"{settings_file}: not YAML: {exc}".splitlines()[0], EXIT_INVALID) from None
        if not isinstance(loaded, dict):
            raise CliError(f"{settings_file}: expected a mapping of settings", EXIT_INVALID)
        return loaded
    if not assignments:
        return None
    settings: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key.strip():
            raise CliError(f"--set {assignment!r}: expected KEY=VALUE", EXIT_INVALID)
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        target = settings
        *parents, leaf = key.strip().split(".")
        for parent in parents:
            nested = target.setdefault(parent, {})
            if not isinstance(nested, dict):
                raise CliError(f"--set {assignment!r}: {parent} is already a value", EXIT_INVALID)
            target = nested
        target[leaf] = value
    return settings
