"""Endpoints per region, one root for every family, the workspace header, the retry arithmetic."""

from __future__ import annotations

import random
from typing import Any

import pytest
from client_helpers import LIMITERS

from bailian_flow.client import BailianClient, Family, RetryConfig
from bailian_flow.client._config import resolve_endpoints
from bailian_flow.client._retry import backoff_delay, is_retryable, parse_retry_after, retry_wait
from bailian_flow.client.errors import APIConnectionError, APITimeoutError, BailianError, status_error


def test_regions_send_batches_and_their_files_to_the_main_host() -> None:
    # service-contract.md#C31: every documented /batches call and the batch file upload use the region's
    # dashscope(-intl) host; batch.dashscope.aliyuncs.com is documented only for synchronous Batch Chat.
    from bailian_flow.client.resources import batches, compat_files

    operations = [batches._CREATE, batches._GET, batches._LIST, batches._CANCEL, compat_files._UPLOAD]
    for region, host in (("cn", "dashscope.aliyuncs.com"), ("intl", "dashscope-intl.aliyuncs.com")):
        client = BailianClient(api_key="k", region=region, environ={})
        assert client.endpoints.native == f"https://{host}/api/v1"
        for op in operations:
            assert client.url(op, "/batches") == f"https://{host}/compatible-mode/v1/batches", (region, op.name)
    with pytest.raises(ValueError):
        resolve_endpoints("mars", None)


def test_one_root_points_every_family_at_the_emulator() -> None:
    for root in ("http://127.0.0.1:9000", "http://127.0.0.1:9000/", "http://127.0.0.1:9000/api/v1"):
        endpoints = resolve_endpoints("cn", root)
        assert endpoints.native == "http://127.0.0.1:9000/api/v1"
        assert endpoints.base(Family.COMPATIBLE) == "http://127.0.0.1:9000/compatible-mode/v1"
    client = BailianClient(api_key="k", environ={"DASHSCOPE_BASE_URL": "http://127.0.0.1:9"})
    assert client.endpoints.compatible == "http://127.0.0.1:9/compatible-mode/v1"


async def test_workspace_header_is_sent(bailian_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_WORKSPACE", "llm-from-env")
    async with BailianClient(rate_limits=dict.fromkeys(LIMITERS)) as from_env:
        created = await from_env.deployments.create("qwen3-14b", capacity=1, plan="lora", suffix="e")
    assert created.workspace_id == "llm-from-env"
    async with BailianClient(workspace="llm-explicit", rate_limits=dict.fromkeys(LIMITERS)) as explicit:
        created = await explicit.deployments.create("qwen3-14b", capacity=1, plan="lora", suffix="x")
    assert created.workspace_id == "llm-explicit"


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_backoff_doubles_from_half_a_second_capped_with_jitter() -> None:
    config = RetryConfig()
    rng = random.Random(7)
    for n, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        delay = backoff_delay(n, config, rng)
        assert 0.75 * ceiling <= delay <= ceiling
    assert retry_wait(0, config, retry_after=3.0) == 3.0  # the server asked for longer
    assert retry_wait(0, config, retry_after=600.0) is None  # too long: give up rather than hang


@pytest.mark.parametrize(
    ("error", "for_any_call", "for_idempotent_only"),
    [
        (status_error(429, "Throttling", "slow down"), True, False),
        (status_error(503, "ModelUnavailable", "busy"), True, False),
        (status_error(408, "RequestTimeOut", "too slow"), True, False),
        (status_error(500, "InternalError", "oops"), False, True),
        (status_error(502, None, "bad gateway"), False, True),
        (status_error(501, None, "not implemented"), False, False),
        (status_error(404, "NotFound", "gone"), False, False),
        (status_error(None, "Throttling", "an SSE error frame has no status"), False, False),
        (APIConnectionError("refused", maybe_processed=False), True, False),
        (APIConnectionError("dropped", maybe_processed=True), False, True),
        (APITimeoutError("no answer"), False, True),
    ],
)
def test_which_failures_are_retried(error: BailianError, for_any_call: bool, for_idempotent_only: bool) -> None:
    assert is_retryable(error, idempotent=False) is for_any_call
    assert is_retryable(error, idempotent=True) is (for_any_call or for_idempotent_only)
