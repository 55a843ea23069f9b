"""`bailian-flow files upload PATH --purpose fine-tune [--description TEXT]`: upload through the client.

Talks to whatever `DASHSCOPE_BASE_URL` names (the emulator locally), prints the new file id on stdout, and
shows a progress line on stderr when stderr is a terminal (silent otherwise, so scripts can capture the id).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import TextIO

__all__ = ["run"]


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


def _precheck(path: str) -> str | None:
    """What would otherwise surface as a misleading network error, said plainly before anything is sent."""
    from urllib.parse import urlsplit

    if os.path.isdir(path):
        return f"{path} is a directory; give a file"
    if not os.environ.get("DASHSCOPE_API_KEY"):
        return "DASHSCOPE_API_KEY is not set (any non-empty value works against the local emulator)"
    base_url = os.environ.get("DASHSCOPE_BASE_URL")
    if base_url and (urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc):
        return f"DASHSCOPE_BASE_URL must be an http:// or https:// URL, got {base_url!r}"
    return None


def run(args: argparse.Namespace) -> int:
    from .errors import BailianError

    if not os.path.exists(args.path):
        print(f"bailian-flow: no such file: {args.path}", file=sys.stderr)
        return 3
    problem = _precheck(args.path)
    if problem is not None:
        print(f"bailian-flow: {problem}", file=sys.stderr)
        return 4 if "DASHSCOPE" in problem else 1
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
