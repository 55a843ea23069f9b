"""`bailian-flow dev`: run the s.yaml functions locally under their triggers until Ctrl-C.

The click command (options, help) is in `bailian_flow.cli.local`; this module does the work, so it imports no
CLI library. By default everything lives in a data directory that survives restarts, the API token included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bailian_flow.local.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[3]
TOKEN_FILE = "api-token"
# Loggers that narrate every request; worth seeing only with -v.
CHATTY_LOGGERS = ("werkzeug", "aiohttp.access", "apscheduler")


class StartupError(Exception):
    """The stack cannot start for a reason the user can fix (a busy port, a bad s.yaml): one line, exit 4."""


def default_config() -> Path:
    here = Path("s.yaml")
    return here if here.exists() else REPO_ROOT / "s.yaml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bailian-flow"


def configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose < 2:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    temporary: Path | None = None
    if args.ephemeral:
        temporary = args.data_dir = Path(tempfile.mkdtemp(prefix="bailian-flow-dev-"))
    elif args.data_dir is None:
        args.data_dir = default_data_dir()
    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        args.api_token = args.api_token or _kept_token(args.data_dir)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args, ephemeral=temporary is not None))
    except StartupError as exc:
        print(f"bailian-flow: {exc}", file=sys.stderr)
        return 4
    except OSError as exc:
        print(f"bailian-flow: data directory {args.data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 4
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


def _kept_token(data_dir: Path) -> str:
    """The token of this data directory, made once: a restarted stack keeps working with the same clients."""
    path = data_dir / TOKEN_FILE
    with contextlib.suppress(OSError):
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept
    token = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token)
    return token


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
        emulator_profile=getattr(args, "emulator_profile", None),
    )


def _check_ports(args: argparse.Namespace) -> None:
    """A taken port, said before anything starts (werkzeug would print its own story and exit)."""
    flags = {"--emulator-port": args.emulator_port, "--invoke-port": args.invoke_port, "--http-port": args.http_port}
    for flag, port in flags.items():
        if not port:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise StartupError(
                    f"port {port} ({flag}) is already in use; choose another, or 0 for a free one"
                ) from None


async def start_stack(stack: LocalStack, args: argparse.Namespace) -> None:
    """Start, turning the failures a user causes into one line that says what to change."""
    from bailian_flow.local.spec import SpecError

    _check_ports(args)
    try:
        await stack.start()
    except BaseException as exc:
        await stack.stop()
        if isinstance(exc, SpecError):
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StartupError(f"{args.config or default_config()}: {first_line}") from None
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            ports = {"--invoke-port": args.invoke_port, "--http-port": args.http_port}
            busy = ", ".join(f"{flag} {port}" for flag, port in ports.items() if port)
            raise StartupError(f"a port is already in use ({busy}); choose another, or 0 for a free one") from None
        if isinstance(exc, RuntimeError) and "emulator" in str(exc):
            raise StartupError(f"{exc} (is --emulator-port {args.emulator_port} free?)") from None
        raise


async def _serve(args: argparse.Namespace, *, ephemeral: bool) -> None:
    from bailian_flow.local.profile import Profile, remove_profile, write_profile

    stack = stack_from_args(args, api_token=args.api_token)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stopping.set)
    await start_stack(stack, args)
    try:
        profile = Profile(
            api_url=stack.http_url,
            api_token=stack.api_token,
            oss_endpoint=stack.oss_endpoint,
            bucket=stack.bucket,
            oss_region=stack.environment.get("BAILIAN_FLOW_OSS_REGION") or "cn-hangzhou",
            access_key_id=stack.environment["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=stack.environment["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            path_style=True,
            dashscope_base_url=stack.emulator_url,
        )
        profile_file = write_profile(profile)
        print(describe(stack, data_dir=args.data_dir, ephemeral=ephemeral, profile=profile_file), flush=True)
        await stopping.wait()
        print("stopping…", flush=True)
    finally:
        remove_profile(stack.http_url)
        await stack.stop()


def describe(
    stack: LocalStack, *, data_dir: Path | None = None, ephemeral: bool = True, profile: Path | None = None
) -> str:
    lines = [
        "bailian-flow dev is running (Ctrl-C to stop)",
        f"  Bailian emulator  {stack.emulator_url}  (DASHSCOPE_BASE_URL)",
        f"  OSS endpoint      {stack.oss_endpoint}  bucket {stack.bucket}  (path style, any credentials)",
        f"  invoke endpoint   {stack.invoke_url}/2023-03-30/functions/<name>/invocations",
    ]
    for name, url in stack.http_urls.items():
        lines.append(f"  HTTP trigger      {url}  ({name}; status page at /)")
    lines.append(f"  API token         {stack.api_token}  (Authorization: Bearer …)")
    if data_dir is not None:
        kept = "temporary: deleted on exit" if ephemeral else "kept across restarts"
        lines.append(f"  data dir          {data_dir}  ({kept})")
    if profile is not None:
        lines.append(f"  profile           {profile}  (bailian-flow runs / put use it)")
    for function in stack.functions.values():
        spec = function.spec
        triggers = [f"oss {t.prefix}*{t.suffix}" for t in spec.oss_triggers]
        every = f"every {stack.timer_interval:g} s (--timer-interval)" if stack.timer_interval else None
        triggers += [f"timer {every or t.cron_expression}" for t in spec.timer_triggers]
        triggers += [f"http {','.join(t.methods)}" for t in spec.http_triggers]
        lines.append(f"  function {spec.name:<14} {'; '.join(triggers) or 'invoke only'}")
    return "\n".join(lines)
