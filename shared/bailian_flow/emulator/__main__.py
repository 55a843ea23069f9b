"""``python -m bailian_flow.emulator``: serve the emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import signal
import sys
import tempfile

from aiohttp import web

READY_PREFIX = "bailian-flow emulator ready"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one")
    parser.add_argument("--data-dir", type=pathlib.Path, default=None, help="storage root (default: temp dir)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="emulated seconds per real second (default 1)")
    parser.add_argument("--api-key", default=None, help="the only accepted key (default: any non-empty key)")


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: pathlib.Path | None = None,
    time_scale: float = 1.0,
    api_key: str | None = None,
) -> tuple[web.AppRunner, str]:
    """Start the emulator in the running loop; returns the runner (call ``cleanup()``) and its base URL."""
    from .app import create_app
    from .clock import Clock
    from .state import EmulatorState

    if data_dir is None:
        data_dir = pathlib.Path(tempfile.mkdtemp(prefix="bailian-flow-emulator-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    state = EmulatorState(data_dir=data_dir, clock=Clock(time_scale), api_key=api_key)
    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    display_host = f"[{host}]" if ":" in host else host
    return runner, f"http://{display_host}:{bound_port}"


async def _serve_forever(args: argparse.Namespace) -> None:
    runner, url = await serve(args.host, args.port, args.data_dir, args.time_scale, args.api_key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"{READY_PREFIX} {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve_forever(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bailian_flow.emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
