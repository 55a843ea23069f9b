"""`bailian-flow dev|demo|emulator`: the local stack, the end-to-end demo, the bare emulator."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bailian_flow.cli._app import verbose_option, verbosity

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _stack_options(*, time_scale: float, timer_interval: float | None) -> Callable[[Any], Any]:
    """Options shared by `dev` and `demo`."""
    options = [
        click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Serverless Devs file [s.yaml]"),
        click.option("--time-scale", type=click.FloatRange(min=0.001), default=time_scale, show_default=True,
                     help="Emulated seconds per real second (how fast Bailian's jobs run)."),
        click.option("--timer-interval", type=click.FloatRange(min=0.05), default=timer_interval,
                     help="Fire timer triggers every N seconds instead of their cronExpression."),
        click.option("--emulator-port", type=click.IntRange(0, 65535), default=0, help="Emulator port (0: free)."),
        click.option("--emulator-profile", type=click.Choice(["default", "strict"]), default=None,
                     help="Undocumented Bailian behaviours: lenient, or their strictest reading "
                          "[default: $BAILIAN_FLOW_EMULATOR_PROFILE, else default]."),
        click.option("--invoke-port", type=click.IntRange(0, 65535), default=0, help="FC invoke API port (0: free)."),
        click.option("--http-port", type=click.IntRange(0, 65535), default=0, help="HTTP trigger port (0: free)."),
        click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="Concurrent async deliveries."),
        verbose_option,
    ]  # fmt: skip

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.command(context_settings=CONTEXT)
@_stack_options(time_scale=1.0, timer_interval=None)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the emulator keeps buckets, files, jobs and deployments across restarts "
    "[default: $XDG_DATA_HOME/bailian-flow, i.e. ~/.local/share/bailian-flow].",
)
@click.option("--ephemeral", is_flag=True, help="Keep nothing: a fresh temporary data directory, deleted on exit.")
@click.option(
    "--api-token",
    envvar="BAILIAN_FLOW_API_TOKEN",
    show_envvar=True,
    help="The REST API's bearer token [default: generated once and kept in the data dir].",
)
def dev(**options: Any) -> int:
    """Run the functions of s.yaml locally under their triggers, against the emulator, until Ctrl-C.

    Writes a profile (mode 0600) so that `runs`, `put` and `validate` talk to this stack with no configuration.

    \b
    Examples:
      bailian-flow dev
      BAILIAN_FLOW_API_TOKEN=secret bailian-flow dev --data-dir ./state --http-port 9000
    """
    from bailian_flow.local.cli import run

    return run(argparse.Namespace(verbose=verbosity(), **options))


@click.command(context_settings=CONTEXT)
@_stack_options(time_scale=25.0, timer_interval=1.0)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the emulator keeps files.")
@click.option(
    "--dataset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The dataset to upload [default: samples/sft/train.jsonl].",
)
@click.option("--key", default="datasets/demo/train.jsonl", show_default=True, help="Object key to upload it as.")
@click.option("--timeout", type=click.FloatRange(min=1), default=90.0, show_default=True, help="Give up after N s.")
def demo(**options: Any) -> int:
    """Run the main job end to end on a fresh local stack: upload a dataset and follow its run to DONE.

    Bailian's jobs run 25× faster than the service's and the timer ticks every second.

    \b
    Example:
      bailian-flow demo --dataset my.jsonl
    """
    from bailian_flow.local.demo import run

    return run(argparse.Namespace(verbose=verbosity(), **options))


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: a free one).")
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Storage root [default: a temp dir]."
)
@click.option("--time-scale", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Emulated seconds per real second.")  # fmt: skip
@click.option("--api-key", default=None, help="The only accepted API key [default: any non-empty key].")
@click.option("--profile", type=click.Choice(["default", "strict"]), default=None,
              help="Undocumented Bailian behaviours: lenient, or their strictest reading "
                   "[default: $BAILIAN_FLOW_EMULATOR_PROFILE, else default].")  # fmt: skip
@click.option("--region", type=click.Choice(["cn", "intl"]), default="cn", show_default=True,
              help="The region emulated: operations it does not offer are refused.")  # fmt: skip
@verbose_option
def emulator(**options: Any) -> int:
    """Serve just the Bailian + OSS emulator (also: python -m bailian_flow.emulator).

    \b
    Example:
      bailian-flow emulator --port 8000 --time-scale 100
      bailian-flow emulator --profile strict
    """
    from bailian_flow.emulator.__main__ import run

    return run(argparse.Namespace(**options))
