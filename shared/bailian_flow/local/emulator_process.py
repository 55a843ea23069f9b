"""The emulator as a child process (`python -m bailian_flow.emulator`), started on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("bailian_flow.local")

READY_PREFIX = "bailian-flow emulator ready "


class EmulatorProcess:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | None = None,
        time_scale: float = 1.0,
        startup_timeout: float = 30.0,
        profile: str | None = None,
    ) -> None:
        self._args = ["--host", host, "--port", str(port), "--time-scale", str(time_scale)]
        if profile is not None:  # None: the emulator's own default ($BAILIAN_FLOW_EMULATOR_PROFILE, else default)
            self._args += ["--profile", profile]
        if data_dir is not None:
            self._args += ["--data-dir", str(data_dir)]
        self._startup_timeout = startup_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> str:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bailian_flow.emulator",
            *self._args,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), self._startup_timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise RuntimeError("the emulator did not report ready in time") from None
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith(READY_PREFIX):
            await self.stop()
            raise RuntimeError(f"the emulator did not start: {text!r}")
        self.url = text[len(READY_PREFIX) :].strip()
        # Keep reading its stdout so that a chatty emulator never blocks on a full pipe.
        self._drain = asyncio.create_task(self._forward(self._process.stdout))
        return self.url

    @staticmethod
    async def _forward(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.debug("emulator: %s", line.decode("utf-8", "replace").rstrip())

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None
