"""`bailian-flow files upload`: a file straight to Bailian through the client (no run, no bucket)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import click

from bailian_flow.cli._app import verbose_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def files() -> None:
    """Bailian files, through the client (DASHSCOPE_BASE_URL and DASHSCOPE_API_KEY, or a running `bailian-flow dev`)."""


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

    A progress line goes to stderr when it is a terminal. Without DASHSCOPE_BASE_URL, while `bailian-flow dev`
    runs, the file goes to its emulator.

    \b
    Examples:
      bailian-flow files upload train.jsonl                        # to the emulator of `bailian-flow dev`
      DASHSCOPE_BASE_URL=http://127.0.0.1:8765 bailian-flow files upload train.jsonl --purpose fine-tune
    """
    from bailian_flow.client.cli import run

    _use_dev_emulator()
    return run(argparse.Namespace(path=str(path), purpose=purpose, description=description))


def _use_dev_emulator() -> None:
    """The emulator named by the profile of a running `bailian-flow dev`, unless DASHSCOPE_BASE_URL names a host.

    Without this, a user with only an API key set would upload to the real service while meaning the local one.
    """
    from bailian_flow.local.profile import load_profile

    if os.environ.get("DASHSCOPE_BASE_URL"):
        return
    profile, source = load_profile()
    if source is None or not profile.dashscope_base_url:
        return
    os.environ["DASHSCOPE_BASE_URL"] = profile.dashscope_base_url
    # The emulator takes any key: a real one is never sent where the user did not name the service.
    os.environ["DASHSCOPE_API_KEY"] = "sk-local-profile"
    click.echo(f"uploading to the emulator of `bailian-flow dev` ({profile.dashscope_base_url})", err=True)
