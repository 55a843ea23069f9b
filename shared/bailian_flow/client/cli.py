"""`bailian-flow files upload PATH --purpose fine-tune [--description TEXT]`: upload through the client.

Talks to whatever `DASHSCOPE_BASE_URL` names (the emulator locally), prints the new file id on stdout, and
shows a progress line on stderr when stderr is a terminal (silent otherwise, so scripts can capture the id).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="local file to upload (streamed: any size, constant memory)")
    parser.add_argument("--purpose", default="fine-tune", help="fine-tune | file-extract | batch")
    parser.add_argument("--description", default=None, help="a description stored with the file")


class Progress:
    """A single self-overwriting line, redrawn at most every 0.1 s."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self._name = name
        self._stream = stream
        self._last = 0.0
        self._started = time.monotonic()

    def __call__(self, sent: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and sent != total:
            return
        self._last = now
        rate = sent / max(now - self._started, 1e-6) / 2**20
        if total:
            text = f"{self._name}: {sent / 2**20:.1f}/{total / 2**20:.1f} MiB ({100 * sent // total}%)"
        else:
            text = f"{self._name}: {sent / 2**20:.1f} MiB"
        self._stream.write(f"\r{text} {rate:.1f} MiB/s\033[K")
        self._stream.flush()

    def done(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


async def _upload(path: str, purpose: str, description: str | None) -> str:
    from . import BailianClient

    progress = Progress(path, sys.stderr) if sys.stderr.isatty() else None
    async with BailianClient() as client:
        uploaded = await client.files.upload(path, purpose=purpose, description=description, progress=progress)
    if progress is not None:
        progress.done()
    return uploaded.file_id


def run(args: argparse.Namespace) -> int:
    from .errors import BailianError

    try:
        file_id = asyncio.run(_upload(args.path, args.purpose, args.description))
    except FileNotFoundError as exc:
        print(f"bailian-flow: no such file: {exc.filename}", file=sys.stderr)
        return 2
    except BailianError as exc:
        print(f"bailian-flow: upload failed: {exc}", file=sys.stderr)
        return 1
    print(file_id)
    return 0
