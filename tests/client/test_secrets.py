"""The API key never shows: not in reprs, exception texts or log output, even when the server echoes it."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from client_helpers import LIMITERS, SFT_LINE, Control, client_fixture, control_fixture  # noqa: F401 - fixtures

from bailian_flow.client import BailianClient, RetryConfig
from bailian_flow.client.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
)
from bailian_flow.client.models.files import FileInfo
from bailian_flow.client.models.fine_tunes import FineTuneEvent
from bailian_flow.client.models.uploads import UploadPolicy
from bailian_flow.client.resources.fine_tunes import _stream_error


async def test_key_is_absent_from_reprs_errors_and_logs(
    bailian_env: Any, control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    key = bailian_env.api_key
    caplog.set_level(logging.DEBUG)
    retry = RetryConfig(initial_delay=0.01, max_delay=0.02, max_retries=1)
    async with BailianClient(retry=retry, rate_limits=dict.fromkeys(LIMITERS)) as client:
        texts = [repr(client), str(client), repr(client.files), repr(client.options)]
        # A server that echoes the key back in its error message.
        await control.faults({"path": "/api/v1/fine-tunes", "status": 500, "message": f"bad key {key}"})
        with pytest.raises(APIStatusError) as echoed:
            await client.fine_tunes.list_page()
        await control.faults({"path": "/api/v1/files", "method": "POST", "drop": "after"})
        with pytest.raises(APIConnectionError) as dropped:
            await client.files.upload(SFT_LINE, filename="t.jsonl")
    for error in (echoed.value, dropped.value):
        texts += [str(error), repr(error), repr(error.args), str(vars(error))]
    assert "**********" in echoed.value.message
    texts.append(caplog.text)
    assert "retry" in caplog.text  # the retries were logged...
    for text in texts:
        assert key not in text  # ...and nothing anywhere holds the key


def test_upload_policy_repr_hides_the_signature() -> None:
    policy = UploadPolicy(
        policy="eyJsecret-policy",
        signature="secret-signature",
        upload_dir="d",
        upload_host="http://127.0.0.1:1/b",
        oss_access_key_id="LTAIexample",
    )
    assert "secret-signature" not in repr(policy) and "eyJsecret-policy" not in repr(policy)


def test_key_is_scrubbed_from_stream_error_frames_and_shape_errors() -> None:
    # Server text that reaches an error by other roads than an HTTP error answer: an SSE `event:error` frame
    # and a 2xx body of the wrong shape. No request is sent: the client only builds the errors.
    key = "sk-not-a-real-key-0123456789"
    client = BailianClient(api_key=key, base_url="http://127.0.0.1:1")
    frame = FineTuneEvent(event="error", data=json.dumps({"code": "InvalidApiKey", "message": f"bad key {key}"}))
    streamed = _stream_error(frame, "401", None, client.scrub)
    assert isinstance(streamed, AuthenticationError)
    assert "**********" in streamed.message
    with pytest.raises(APIResponseValidationError) as shaped:
        client.parse(FileInfo, {"file_id": [key]})
    for error in (streamed, shaped.value):
        assert key not in str(error) and key not in repr(error.args)


def test_key_is_scrubbed_from_successful_answers_quoted_in_errors() -> None:
    # A 2xx answer that is not JSON, or JSON without output/data, is quoted in the error: never the key.
    from bailian_flow.client._answers import Answer
    from bailian_flow.client.resources._resource import native_payload

    key = "sk-not-a-real-key-9876543210"
    client = BailianClient(api_key=key, base_url="http://127.0.0.1:1")
    not_json = Answer(200, {}, f"<html>echo {key}</html>".encode(), scrub=client.scrub)
    no_payload = Answer(200, {}, json.dumps({"echo": key}).encode(), scrub=client.scrub)
    for answer in (not_json, no_payload):
        with pytest.raises(APIResponseValidationError) as raised:
            native_payload(answer)
        assert key not in str(raised.value) and "**********" in str(raised.value)
