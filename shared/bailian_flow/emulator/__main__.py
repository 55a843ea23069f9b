"""``python -m bailian_flow.emulator``: serve the emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import pathlib
import signal
import sys
import tempfile

from aiohttp import web

READY_PREFIX = "bailian-flow emulator ready"
PROFILE_ENV = "BAILIAN_FLOW_EMULATOR_PROFILE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one")
    parser.add_argument("--data-dir", type=pathlib.Path, default=None, help="storage root (default: temp dir)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="emulated seconds per real second (default 1)")
    parser.add_argument("--api-key", default=None, help="the only accepted key (default: any non-empty key)")
    parser.add_argument(
        "--profile",
        choices=("default", "strict"),
        # From the environment too, so that a whole test suite (every emulator it starts) runs strict in CI.
        default=None,
        help=f"undocumented behaviours: lenient (default) or their strictest reading (strict); default ${PROFILE_ENV}",
    )
    parser.add_argument(
        "--region", choices=("cn", "intl"), default="cn", help="the region emulated: cn (Beijing, default) or intl"
    )


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: pathlib.Path | None = None,
    time_scale: float = 1.0,
    api_key: str | None = None,
    profile: str = "default",
    region: str = "cn",
) -> tuple[web.AppRunner, str]:
    """Start the emulator in the running loop; returns the runner (call ``cleanup()``) and its base URL."""
    from .app import create_app
    from .clock import Clock
    from .state import EmulatorState

    # A data directory given is the user's to keep: the registries are saved there and restored on start.
    persistent = data_dir is not None
    if data_dir is None:
        data_dir = pathlib.Path(tempfile.mkdtemp(prefix="bailian-flow-emulator-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    state = EmulatorState(data_dir=data_dir, clock=Clock(time_scale), api_key=api_key, profile=profile, region=region)
    app = create_app(state)
    if persistent:
        from .persist import enable

        if enable(app, data_dir):
            logging.getLogger(__name__).info("restored the emulator's state from %s", data_dir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    display_host = f"[{host}]" if ":" in host else host
    return runner, f"http://{display_host}:{bound_port}"


async def _serve_forever(args: argparse.Namespace) -> None:
    runner, url = await serve(
        args.host,
        args.port,
        args.data_dir,
        args.time_scale,
        args.api_key,
        getattr(args, "profile", None) or os.environ.get(PROFILE_ENV) or "default",
        getattr(args, "region", None) or "cn",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"{READY_PREFIX} {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class _QuietDisconnects(logging.Filter):
    """A client that hangs up mid-request (an aborted upload, a test's dropped connection) is not a crash: one
    line instead of aiohttp's forty-line traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (ConnectionResetError, BrokenPipeError)):
            record.msg, record.args, record.exc_info, record.exc_text = "client disconnected: %s", (error,), None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def run(args: argparse.Namespace) -> int:
    verbose = bool(getattr(args, "verbose", 0)) or bool(os.environ.get("BAILIAN_FLOW_EMULATOR_VERBOSE"))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    for name in ("aiohttp.server", "aiohttp.web", "aiohttp.access"):
        logging.getLogger(name).addFilter(_QuietDisconnects())
    try:
        asyncio.run(_serve_forever(args))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"bailian-flow: emulator port {args.port} is already in use; choose another, or 0", file=sys.stderr)
        else:
            print(f"bailian-flow: the emulator cannot start: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bailian_flow.emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
