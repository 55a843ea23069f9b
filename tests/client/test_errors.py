"""Error mapping: HTTP status and service code to one typed hierarchy, with the request id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from client_helpers import LIMITERS, SFT_LINE, Control, client_fixture, control_fixture  # noqa: F401 - fixtures
from emulator_support import start_emulator

from bailian_flow.client import BailianClient, RetryConfig
from bailian_flow.client import errors as e


async def test_missing_key_gives_authentication_error(bailian_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    async with BailianClient() as client:
        with pytest.raises(e.AuthenticationError) as native:
            await client.fine_tunes.list_page()
        with pytest.raises(e.AuthenticationError) as compatible:
            await client.compat_files.list_page()
    assert native.value.status == 401 and native.value.code == "InvalidApiKey"
    assert native.value.request_id
    assert compatible.value.status == 401 and compatible.value.code


async def test_wrong_key_gives_authentication_error(tmp_path: Path) -> None:
    process, url = start_emulator(tmp_path, "--api-key", "sk-the-right-one")
    try:
        async with BailianClient(api_key="sk-a-wrong-one", base_url=url) as wrong:
            with pytest.raises(e.AuthenticationError):
                await wrong.files.list_page()
        async with BailianClient(api_key="sk-the-right-one", base_url=url) as right:
            assert (await right.files.list_page()).total == 0
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_not_found_native_and_compatible(client: BailianClient) -> None:
    with pytest.raises(e.NotFoundError) as native:
        await client.fine_tunes.get("ft-202401010000-dead")
    with pytest.raises(e.NotFoundError) as compatible:
        await client.batches.get("batch_missing")
    for error in (native.value, compatible.value):
        assert error.status == 404 and error.message and error.request_id
    assert "request_id=" in str(native.value)


async def test_bad_request_and_conflict(client: BailianClient) -> None:
    with pytest.raises(e.BadRequestError) as bad:
        await client.files.upload(SFT_LINE, purpose="no-such-purpose", filename="t.jsonl")
    assert bad.value.code == "InvalidParameter"
    await client.deployments.create("qwen3-14b", capacity=1, plan="lora")
    with pytest.raises(e.ConflictError) as conflict:
        await client.deployments.create("qwen3-14b", capacity=1, plan="lora")
    assert conflict.value.status == 409 and "suffix" in conflict.value.message


async def test_too_large_upload_is_reported(client: BailianClient, control: Control) -> None:
    await control._call("POST", "/files/limits", {"fine-tune": 100})
    with pytest.raises(e.UploadFailedError) as too_large:
        await client.files.upload(SFT_LINE * 10, filename="big.jsonl")
    # Over its own size limit, not the storage quota: a bad request, never a wait in the files line.
    assert too_large.value.code == "BadRequest.TooLarge" and isinstance(too_large.value, e.BadRequestError)
    assert not isinstance(too_large.value, e.QuotaExceededError)


async def test_injected_statuses_map_to_their_classes(bailian_env: Any, control: Control) -> None:
    expected = {
        400: e.BadRequestError,
        403: e.PermissionDeniedError,
        408: e.RequestTimeoutError,
        413: e.RequestTooLargeError,
        429: e.RateLimitError,
        502: e.InternalServerError,
    }
    no_retry = RetryConfig(max_retries=0)
    async with BailianClient(retry=no_retry, rate_limits=dict.fromkeys(LIMITERS)) as client:
        for status, cls in expected.items():
            await control._call("DELETE", "/faults")
            await control.faults({"path": "/compatible-mode/v1/files", "status": status, "code": f"Code{status}"})
            with pytest.raises(cls) as raised:
                await client.compat_files.list_page()
            assert raised.value.status == status
            assert raised.value.code == f"Code{status}"


def test_service_code_decides_when_there_is_no_status() -> None:
    assert isinstance(e.status_error(None, "Throttling.RateQuota", "slow down"), e.RateLimitError)
    assert isinstance(e.status_error(None, "invalid_api_key", "no"), e.AuthenticationError)
    assert isinstance(e.status_error(None, "BadRequest.TooLarge", "big"), e.RequestTooLargeError)
    assert type(e.status_error(None, "SomethingNew", "?")) is e.APIStatusError
    assert isinstance(e.status_error(599, None, "odd"), e.InternalServerError)
    assert isinstance(e.status_error(418, "NotFound", "teapot"), e.NotFoundError)


def test_hierarchy() -> None:
    assert issubclass(e.APITimeoutError, e.APIConnectionError)
    for cls in (e.APIConnectionError, e.APIStatusError, e.UploadFailedError, e.APIResponseValidationError):
        assert issubclass(cls, e.BailianError)


def test_error_bodies_of_every_shape() -> None:
    from bailian_flow.client._answers import error_fields

    native = b'{"request_id":"r-1","code":"InvalidParameter","message":"Missing training files"}'
    assert error_fields(native) == ("InvalidParameter", "Missing training files", "r-1")
    compatible = b'{"error":{"message":"bad","type":"invalid_request_error","code":null},"request_id":"r-2"}'
    assert error_fields(compatible) == ("invalid_request_error", "bad", "r-2")
    oss = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        b"<Message>Invalid according to Policy: Policy expired.</Message><RequestId>r-3</RequestId></Error>"
    )
    assert error_fields(oss) == ("AccessDenied", "Invalid according to Policy: Policy expired.", "r-3")
    assert error_fields(b"upstream timeout") == (None, "upstream timeout", None)
