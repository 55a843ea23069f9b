"""`bailian-flow files upload`: a file straight to Bailian through the client (no run, no bucket)."""

from __future__ import annotations

import argparse
from pathlib import Path

import click

from bailian_flow.cli._app import verbose_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def files() -> None:
    """Bailian files, through the client (DASHSCOPE_BASE_URL and DASHSCOPE_API_KEY)."""


@files.command("upload")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--purpose",
    type=click.Choice(["fine-tune", "file-extract", "batch"]),
    default="fine-tune",
    show_default=True,
    help="What the file is for.",
)
@click.option("--description", help="A description stored with the file.")
@verbose_option
def upload(path: Path, purpose: str, description: str | None) -> int:
    """Upload PATH (streamed, any size, constant memory) and print the new file id.

    A progress line goes to stderr when it is a terminal.

    \b
    Example:
      DASHSCOPE_BASE_URL=http://127.0.0.1:8765 bailian-flow files upload train.jsonl --purpose fine-tune
    """
    from bailian_flow.client.cli import run

    return run(argparse.Namespace(path=str(path), purpose=purpose, description=description))
