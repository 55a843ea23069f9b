"""The real functions under the real s.yaml in the local stack: FC's delivery path end to end.

The upload's OSS event reaches on_upload from the emulator's notifications, as FC's trigger would deliver it, and
the same event is also handed to FC's invoke endpoint five more times at once (async invocations): one file, one
fine-tune and one deployment result, and the run is DONE.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from bailian_flow.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
KEY = "datasets/local/train.jsonl"


async def _put(stack: LocalStack, key: str, data: bytes) -> None:
    from bailian_flow.store import open_store

    store = open_store(store="oss", bucket=stack.bucket, endpoint=stack.oss_endpoint)
    try:
        assert await store.put(key, data)
    finally:
        await store.close()


async def _upload_event(session: aiohttp.ClientSession, stack: LocalStack, key: str) -> dict[str, Any]:
    async with session.get(f"{stack.emulator_url}/_emulator/oss/events", params={"after": "0", "wait": "0"}) as r:
        events = (await r.json())["events"]
    [record] = [event["record"] for event in events if event["record"]["oss"]["object"]["key"] == key]
    return {"events": [record]}


async def _run_of(session: aiohttp.ClientSession, stack: LocalStack, key: str) -> dict[str, Any] | None:
    headers = {"Authorization": f"Bearer {stack.api_token}"}
    async with session.get(f"{stack.http_url}/runs", headers=headers) as response:
        runs = (await response.json())["runs"]
    matching = [run for run in runs if run["source"].get("key") == key]
    assert len(matching) <= 1, matching
    return matching[0] if matching else None


async def test_an_upload_and_five_async_redeliveries_give_one_deployed_model(tmp_path: Path) -> None:
    sample = (ROOT / "samples" / "sft" / "train.jsonl").read_bytes()
    async with (
        LocalStack(ROOT / "s.yaml", data_dir=tmp_path, time_scale=100, timer_interval=0.5) as stack,
        aiohttp.ClientSession() as session,
    ):
        await _put(stack, KEY, sample)
        event = json.dumps(await _upload_event(session, stack, KEY)).encode()

        async def invoke_async() -> int:
            async with session.post(
                stack.invoke_endpoint("on_upload"), data=event, headers={"x-fc-invocation-type": "Async"}
            ) as response:
                return response.status

        assert await asyncio.gather(*(invoke_async() for _ in range(5))) == [202] * 5

        deadline = time.monotonic() + 60
        run = None
        while time.monotonic() < deadline:
            run = await _run_of(session, stack, KEY)
            if run and run["stage"] in ("DONE", "FAILED", "CANCELED"):
                break
            await asyncio.sleep(0.2)
        assert run is not None and run["stage"] == "DONE", run
        await stack.wait_idle(timeout=30)

        async with session.get(f"{stack.emulator_url}/_emulator/state") as response:
            created = (await response.json())["created"]
        assert (created["files"], created["fine_tunes"], created["deployments"]) == (1, 1, 1)
        # Six deliveries of the upload reached on_upload (the trigger's and five invocations), none failed.
        uploads = [record for record in stack.records if record.function == "on_upload"]
        assert len(uploads) >= 6
        assert all(record.error is None for record in stack.records), [r for r in stack.records if r.error]
