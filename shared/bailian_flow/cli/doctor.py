"""`bailian-flow doctor`: the service-contract assumptions checked against the account the environment names."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bailian_flow.cli._app import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    json_option,
    make_console,
    print_json,
    verbose_option,
)
from bailian_flow.cli._settings import parse_settings, with_settings_options

if TYPE_CHECKING:
    from bailian_flow.doctor import Report, Uses

REGIONS = ("cn", "intl")
STYLES = {"holds": "green", "violated": "bold red", "unknown": "yellow"}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--probe", is_flag=True, help="Also run the write-and-undo checks: a tiny file, a free test batch.")
@click.option(
    "--batch-timeout",
    type=click.FloatRange(1, 7200),
    default=900.0,
    show_default=True,
    help="Seconds the probe waits for its test batch before cancelling it.",
)
@with_settings_options
@json_option
@verbose_option
def doctor(
    probe: bool, batch_timeout: float, settings_file: Path | None, assignments: tuple[str, ...], as_json: bool
) -> int:
    """Check the Bailian account (DASHSCOPE_API_KEY, DASHSCOPE_REGION, DASHSCOPE_WORKSPACE) against every service
    behaviour the pipeline relies on: one row per assumption of docs/service-contract.md, holds / violated /
    unknown, with the evidence.

    Read-only by default: key and workspace, the region against what the settings use, quota use, list page
    sizes, whether the pipeline's jobs kept their names. --probe adds write-and-undo checks: a tiny file
    uploaded, listed and deleted, and a batch on the free test model (batch-test-model, no inference charge)
    created, listed, downloaded and cleaned up. Exit 1 when an assumption is violated.

    \b
    Examples:
      bailian-flow doctor
      bailian-flow doctor --probe --json > doctor.json
      bailian-flow doctor --set on_success.plan=ptu          # would a PTU run be offered here?
    """
    from bailian_flow.config import ConfigError
    from bailian_flow.doctor import Unusable, uses_of

    _check_environment()
    try:
        uses = uses_of(parse_settings(settings_file, assignments))
    except (ConfigError, ValueError) as exc:
        raise CliError(f"settings: {str(exc).splitlines()[0]}", EXIT_UNREACHABLE) from None
    try:
        report = asyncio.run(_diagnose(uses, probe, batch_timeout))
    except Unusable as exc:
        raise CliError(str(exc), EXIT_UNREACHABLE) from None
    if as_json:
        print_json(report.to_json())
    else:
        _show(report)
    return EXIT_INVALID if report.violated else EXIT_OK


def _check_environment() -> None:
    from urllib.parse import urlsplit

    if not os.environ.get("DASHSCOPE_API_KEY"):
        raise CliError(
            "DASHSCOPE_API_KEY is not set: set it to the account's API key (and DASHSCOPE_REGION cn|intl, "
            "DASHSCOPE_WORKSPACE for a workspace other than the default)",
            EXIT_UNREACHABLE,
        )
    region = os.environ.get("DASHSCOPE_REGION") or "cn"
    if region not in REGIONS:
        raise CliError(f"DASHSCOPE_REGION must be cn or intl, got {region!r}", EXIT_UNREACHABLE)
    base_url = os.environ.get("DASHSCOPE_BASE_URL")
    if base_url and (urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc):
        raise CliError(f"DASHSCOPE_BASE_URL must be an http:// or https:// URL, got {base_url!r}", EXIT_UNREACHABLE)


async def _diagnose(uses: Uses, probe: bool, batch_timeout: float) -> Report:
    from bailian_flow.client import BailianClient, RetryConfig
    from bailian_flow.doctor import diagnose

    # Few retries: the doctor reports what the service answers, and an unreachable host should say so quickly.
    retry = RetryConfig(max_retries=2, initial_delay=0.5, max_delay=2.0, total_timeout=30.0)
    async with BailianClient(retry=retry) as client:
        return await diagnose(client, uses, probe=probe, batch_timeout=batch_timeout)


def _show(report: Report) -> None:
    import sys

    if not sys.stdout.isatty():
        click.echo("\n".join(report.plain_lines()))
        return
    from rich.table import Table

    table = Table(title=report.heading(), title_justify="left", caption=report.summary(), caption_justify="left")
    for name in ("row", "status", "assumption", "evidence"):
        table.add_column(name, overflow="fold")
    for check in report.checks:
        style: Any = STYLES.get(check.status)
        table.add_row(check.row, f"[{style}]{check.status}[/]", check.assumption, check.evidence)
    make_console().print(table)
