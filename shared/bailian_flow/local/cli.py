"""`bailian-flow dev`: run the s.yaml functions locally under their triggers until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bailian_flow.local.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[3]


def default_config() -> Path:
    here = Path("s.yaml")
    return here if here.exists() else REPO_ROOT / "s.yaml"


def add_stack_arguments(parser: argparse.ArgumentParser, *, time_scale: float, timer_interval: float | None) -> None:
    """Options shared by `dev` and `demo`."""
    parser.add_argument("--config", type=Path, default=None, help="the Serverless Devs file (default: s.yaml)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the emulator keeps its files")
    parser.add_argument(
        "--time-scale", type=float, default=time_scale, help="emulated seconds per real second (Bailian jobs)"
    )
    parser.add_argument(
        "--timer-interval",
        type=float,
        default=timer_interval,
        help="fire timer triggers every N seconds instead of their cronExpression",
    )
    parser.add_argument("--emulator-port", type=int, default=0, help="emulator port (0: a free one)")
    parser.add_argument("--invoke-port", type=int, default=0, help="FC invoke API port (0: a free one)")
    parser.add_argument("--http-port", type=int, default=0, help="HTTP trigger port (0: a free one)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent async deliveries")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every delivery")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, time_scale=1.0, timer_interval=None)
    parser.add_argument("--api-token", default=None, help="the REST API's bearer token (default: generated)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


def stack_from_args(args: argparse.Namespace, *, api_token: str | None = None) -> LocalStack:
    from bailian_flow.local.stack import LocalStack

    return LocalStack(
        args.config or default_config(),
        data_dir=args.data_dir,
        time_scale=args.time_scale,
        timer_interval=args.timer_interval,
        emulator_port=args.emulator_port,
        invoke_port=args.invoke_port,
        http_port=args.http_port,
        workers=args.workers,
        api_token=api_token,
    )


async def _serve(args: argparse.Namespace) -> None:
    stack = stack_from_args(args, api_token=args.api_token)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stopping.set)
    async with stack:
        print(describe(stack), flush=True)
        await stopping.wait()
        print("stopping…", flush=True)


def describe(stack: LocalStack) -> str:
    lines = [
        "bailian-flow dev is running (Ctrl-C to stop)",
        f"  Bailian emulator  {stack.emulator_url}  (DASHSCOPE_BASE_URL)",
        f"  OSS endpoint      {stack.oss_endpoint}  bucket {stack.bucket}  (path style, any credentials)",
        f"  invoke endpoint   {stack.invoke_url}/2023-03-30/functions/<name>/invocations",
    ]
    for name, url in stack.http_urls.items():
        lines.append(f"  HTTP trigger      {url}  ({name})")
    lines.append(f"  API token         {stack.api_token}  (Authorization: Bearer …)")
    for function in stack.functions.values():
        spec = function.spec
        triggers = [f"oss {t.prefix}*{t.suffix}" for t in spec.oss_triggers]
        triggers += [f"timer {t.cron_expression}" for t in spec.timer_triggers]
        triggers += [f"http {','.join(t.methods)}" for t in spec.http_triggers]
        lines.append(f"  function {spec.name:<14} {'; '.join(triggers) or 'invoke only'}")
    return "\n".join(lines)
