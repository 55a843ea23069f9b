"""`bailian-flow demo`: the main job end to end on the local stack, in well under a minute.

Starts the stack with a fast clock (Bailian jobs run 25× faster) and a fast timer, uploads the sample dataset
to the emulated bucket with the real OSS SDK, then follows the run through the REST API of the HTTP trigger and
prints each stage as it is reached. Exits 0 with the deployed model's name when the run is DONE.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bailian_flow.local.cli import REPO_ROOT, StartupError, configure_logging, stack_from_args, start_stack

if TYPE_CHECKING:
    from bailian_flow.local.stack import LocalStack

DEFAULT_DATASET = Path("samples/sft/train.jsonl")
SIDECAR_SUFFIX = ".flow.yaml"
TERMINAL = {"DONE", "FAILED", "CANCELED"}


def run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    if not args.verbose:
        # The demo prints every entry of the run's history itself: the pipeline's own line for a failed transition
        # would say the same twice (`-v` shows it).
        logging.getLogger("bailian_flow.pipeline").setLevel(logging.ERROR)
    dataset = args.dataset or (DEFAULT_DATASET if DEFAULT_DATASET.exists() else REPO_ROOT / DEFAULT_DATASET)
    if not dataset.is_file():
        print(f"demo: no dataset at {dataset}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_demo(args, dataset))
    except StartupError as exc:
        print(f"bailian-flow: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130


async def _demo(args: argparse.Namespace, dataset: Path) -> int:
    started = time.monotonic()
    stack = stack_from_args(args)
    await start_stack(stack, args)
    try:
        print(f"local stack up in {time.monotonic() - started:.1f} s")
        print(f"  Bailian emulator {stack.emulator_url}   HTTP trigger {stack.http_url}")
        sidecar = dataset.with_name(dataset.name + SIDECAR_SUFFIX)
        if sidecar.is_file():
            await upload(stack, sidecar, args.key + SIDECAR_SUFFIX)
            print(f"uploaded {sidecar} → oss://{stack.bucket}/{args.key}{SIDECAR_SUFFIX}")
        await upload(stack, dataset, args.key)
        print(f"uploaded {dataset} → oss://{stack.bucket}/{args.key}")
        return await follow(stack, args.key, args.timeout)

    finally:
        await stack.stop()


async def upload(stack: LocalStack, path: Path, key: str) -> None:
    """PutObject with the real OSS SDK, exactly as a user's upload would reach the bucket."""
    import alibabacloud_oss_v2 as oss
    import alibabacloud_oss_v2.aio as oss_aio

    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        stack.environment["ALIBABA_CLOUD_ACCESS_KEY_ID"], stack.environment["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    )
    config.region = stack.environment.get("BAILIAN_FLOW_OSS_REGION") or "cn-hangzhou"
    config.endpoint = stack.oss_endpoint
    config.use_path_style = True
    config.disable_ssl = True
    data = await asyncio.to_thread(path.read_bytes)
    async with oss_aio.AsyncClient(config) as client:
        await client.put_object(oss.PutObjectRequest(bucket=stack.bucket, key=key, body=data))


async def follow(stack: LocalStack, key: str, timeout: float) -> int:
    """Find the run of `key`, then print each new entry of its history (stage and what changed) as it lands."""
    import aiohttp

    started = time.monotonic()
    headers = {"Authorization": f"Bearer {stack.api_token}"}
    shown = 0
    run: dict[str, Any] | None = None
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.monotonic() - started < timeout:
            if run is None:
                run = await _find_run(session, f"{stack.http_url}/runs", key)
            else:
                detail = await _get_json(session, f"{stack.http_url}/runs/{run['run_id']}")
                if detail is not None:
                    run = detail["run"]
                    for entry in detail["history"][shown:]:
                        elapsed = time.monotonic() - started
                        print(
                            f"  {elapsed:6.1f} s  #{entry['seq']:<3} {entry['stage']:<19} {entry['changed']}",
                            flush=True,
                        )
                    shown = len(detail["history"])
                    if run["stage"] in TERMINAL:
                        break
            await asyncio.sleep(0.2)
    if run is None:
        print(f"demo: no run appeared for {key} within {timeout:.0f} s", file=sys.stderr)
        return 1
    if run["stage"] == "DONE":
        print(f"DONE in {time.monotonic() - started:.1f} s: deployed model {run.get('deployed_model')}")
        return 0
    if run["stage"] in TERMINAL:
        reason = (run.get("error") or {}).get("reason") or "no error recorded"
        print(f"demo: run {run.get('run_id')} ended {run['stage']}: {reason}", file=sys.stderr)
    else:
        print(f"demo: run {run.get('run_id')} still {run['stage']} after {timeout:.0f} s", file=sys.stderr)
    return 1


async def _get_json(session: Any, url: str) -> dict[str, Any] | None:
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return None
            body: dict[str, Any] = await response.json()
            return body
    except Exception:  # the API is a moving part of the demo: try again on the next poll
        return None


async def _find_run(session: Any, url: str, key: str) -> dict[str, Any] | None:
    body = await _get_json(session, url)
    if body is None:
        return None
    for candidate in body.get("runs") or []:
        source = candidate.get("source") or {}
        if source.get("key") == key:
            found: dict[str, Any] = candidate
            return found
    return None
