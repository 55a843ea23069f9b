"""Log lines as SLS receives them: one JSON object per line with the context fields, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bailian_flow import obs

API_KEY = "sk-live-7f3a9c2e11d04b6a"
ACCESS_SECRET = "Zq8xAccessKeySecretValue42"
STS_TOKEN = "CAISzwJ1q6Ft5B2yfSjIr5bSEsHa2rNx15GSUErdlHEkSHtTiYffhRDSz4x7y5ZQ"
WEBHOOK = "whsec_MfKQ9r8GKYqrTkMzTbuZG3NZQVQ0"
CALLBACK_TOKEN = "c2b1f0a9e8d7c6b5a4938271"


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS_TOKEN)
    monkeypatch.setenv("BAILIAN_FLOW_WEBHOOK_SECRET", WEBHOOK)
    buffer = io.StringIO()
    obs.configure("json", stream=buffer)
    try:
        yield buffer
    finally:
        obs.unconfigure()


def parsed(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


LEAKS = [
    ("api key in a message", f"calling Bailian with key {API_KEY}"),
    ("an unknown sk- key", "retry with sk-ws-H4ck3dSomeOtherKey99 failed"),
    ("a bearer header", "headers: {'Authorization': 'Bearer abc.def-ghi_jkl'}"),
    ("access key secret by name", "access_key_secret=AnotherSecretNotInEnv123&x=1"),
    ("access key secret by value", f"signing with {ACCESS_SECRET}"),
    ("an STS token", f"x-oss-security-token: {STS_TOKEN}"),
    ("an unknown STS token", "token CAISzwJ1q6Ft5B2yfSjIr5bSEsHaUnknownTokenValue0000 expired"),
    ("a webhook secret", f"verifying with {WEBHOOK}"),
    ("an unknown webhook secret", "secret whsec_Other/Secret+Value= rejected"),
    ("a callback path", f"POST /callbacks/batch/r0123456789abcdef/{CALLBACK_TOKEN} answered 200"),
    ("a json-ish token field", '{"callback_token": "' + CALLBACK_TOKEN + '"}'),
]


@pytest.mark.parametrize(("case", "message"), LEAKS, ids=[case for case, _ in LEAKS])
def test_no_secret_reaches_a_line(lines: io.StringIO, case: str, message: str) -> None:
    logging.getLogger("bailian_flow.client").warning(message)
    logging.getLogger("bailian_flow.pipeline").warning("%s", message)  # in the arguments, not the format
    logging.getLogger("bailian_flow.pipeline").warning("seen", extra={"fields": {"detail": message}})
    text = lines.getvalue()
    for secret in (API_KEY, ACCESS_SECRET, STS_TOKEN, WEBHOOK, CALLBACK_TOKEN, "abc.def-ghi_jkl", "H4ck3d"):
        assert secret not in text, case
    for needle in ("AnotherSecretNotInEnv123", "Other/Secret", "UnknownTokenValue"):
        assert needle not in text, case
    assert all(line["level"] == "WARNING" for line in parsed(lines))  # still valid JSON after masking


def test_a_traceback_and_secret_named_fields_are_masked(lines: io.StringIO) -> None:
    try:
        raise RuntimeError(f"Bailian refused Authorization: Bearer {API_KEY}")
    except RuntimeError:
        logging.getLogger("bailian_flow.pipeline").exception("submit failed")
    fields = {"api_key": "plain-value-1234", "nested": {"security_token": "x" * 40, "tokens": 1234}, "ok": "yes"}
    logging.getLogger("bailian_flow.pipeline").info("fields", extra={"fields": fields})
    failed, shown = parsed(lines)
    assert failed["event"] == "submit failed" and "RuntimeError" in str(failed["error"])
    assert API_KEY not in lines.getvalue() and "plain-value-1234" not in lines.getvalue()
    assert shown["api_key"] == "***" and shown["nested"] == {"security_token": "***", "tokens": 1234}
    assert shown["ok"] == "yes"


def test_counts_named_like_tokens_are_not_masked(lines: io.StringIO) -> None:
    logging.getLogger("bailian_flow.pipeline").info("usage input_tokens=10 output_tokens: 45 max_tokens=8")
    assert parsed(lines)[0]["event"] == "usage input_tokens=10 output_tokens: 45 max_tokens=8"


def test_each_line_carries_the_bound_context(lines: io.StringIO) -> None:
    log = logging.getLogger("bailian_flow.pipeline")
    with obs.bind(function="on_timer", request_id="req-1"):
        log.info("tick starts")
        with obs.bind(run_id="r0123456789abcdef", kind="batch", stage="batch-running"):
            log.info("shard %d submitted", 3)
        log.info("tick ends")
    log.info("outside")
    first, inner, last, outside = parsed(lines)
    assert {k: inner[k] for k in obs.CONTEXT_FIELDS} == {
        "run_id": "r0123456789abcdef",
        "kind": "batch",
        "stage": "batch-running",
        "function": "on_timer",
        "request_id": "req-1",
    }
    assert inner["event"] == "shard 3 submitted" and inner["logger"] == "bailian_flow.pipeline"
    assert first["run_id"] is None and last["run_id"] is None and last["function"] == "on_timer"
    assert outside["function"] is None


def test_concurrent_tasks_keep_their_own_run(lines: io.StringIO) -> None:
    import asyncio

    log = logging.getLogger("bailian_flow.pipeline")

    async def visit(run_id: str) -> None:
        with obs.bind(run_id=run_id):
            await asyncio.sleep(0)  # let the other task bind in between
            log.info("visited %s", run_id)

    async def main() -> None:
        await asyncio.gather(*(visit(f"r{n:015d}") for n in range(4)))

    asyncio.run(main())
    assert all(line["event"] == f"visited {line['run_id']}" for line in parsed(lines))
    assert len(parsed(lines)) == 4


def test_text_format_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
    buffer = io.StringIO()
    obs.configure("text", stream=buffer)
    try:
        with obs.bind(function="on_upload", run_id="r0123456789abcdef", stage="validating"):
            logging.getLogger("bailian_flow.pipeline").warning("key %s refused", API_KEY, extra={"fields": {"n": 2}})
    finally:
        obs.unconfigure()
    [line] = buffer.getvalue().splitlines()
    assert "WARNING bailian_flow.pipeline [on_upload r0123456789abcdef validating]: key *** refused n=2" in line
    assert API_KEY not in line


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "text"),
        ({"FC_REGION": "cn-hangzhou", "FC_ACCOUNT_ID": "1"}, "text"),  # the local stack sets these two
        ({"FC_FUNCTION_NAME": "on_timer"}, "json"),
        ({"FC_INSTANCE_ID": "c-1"}, "json"),
        ({"FC_FUNCTION_NAME": "on_timer", "BAILIAN_FLOW_LOG_FORMAT": "text"}, "text"),
        ({"BAILIAN_FLOW_LOG_FORMAT": "JSON"}, "json"),
    ],
)
def test_json_on_fc_text_locally_unless_asked(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name in ("FC_FUNCTION_NAME", "FC_INSTANCE_ID", "FC_REGION", "FC_ACCOUNT_ID", obs.FORMAT_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert obs.chosen_format() == expected


def test_configuring_twice_does_not_double_lines() -> None:
    buffer = io.StringIO()
    try:
        obs.configure("json", stream=buffer)
        obs.configure("json", stream=buffer)
        logging.getLogger("bailian_flow.pipeline").warning("once")
    finally:
        obs.unconfigure()
    assert len(buffer.getvalue().splitlines()) == 1
    assert logging.getLogger("bailian_flow").propagate


def test_the_metrics_line_is_flat_json_an_sls_query_can_read(lines: io.StringIO) -> None:
    counts = {
        "active": 5,
        "waiting": 2,
        "by_stage": {"training": 2, "waiting": 2, "batch-running": 1},
        "by_kind": {"fine-tune": 4, "batch": 1},
        "quotas": {"fine_tune_jobs": {"used": 3, "limit": 20}},
        "bailian_calls": 4,
        "oss_reads": 9,
        "oss_writes": 1,
        "seconds": 0.812,
    }
    with obs.bind(function="on_timer", request_id="req-9"):
        obs.metrics_line(counts)
    [line] = parsed(lines)
    assert line["event"] == "metrics" and line["metric"] == "tick" and line["function"] == "on_timer"
    assert {name: line[name] for name in counts} == counts


def test_a_handler_that_raises_still_writes_its_summary_without_the_secret(lines: io.StringIO) -> None:
    class Context:
        request_id = "req-raise"

    def handler(event: bytes, context: object) -> dict[str, object]:
        obs.count(oss_reads=2)
        raise ConnectionError(f"Bailian unreachable with key {API_KEY}")

    with pytest.raises(ConnectionError):
        obs.invoke("on_upload", handler, b"{}", Context())
    [summary] = parsed(lines)
    assert summary["outcome"] == "error" and summary["request_id"] == "req-raise"
    assert summary["did"] == {"error": "ConnectionError", "message": "Bailian unreachable with key ***"}
    assert summary["oss_reads"] == 2 and summary["bailian_calls"] is None


def test_counts_made_inside_asyncio_run_reach_the_summary(lines: io.StringIO) -> None:
    import asyncio

    class Context:
        request_id = "req-count"

    async def work() -> dict[str, object]:
        obs.count(bailian_calls=1, oss_reads=3)
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(2)))
        obs.count(bailian_calls=2, oss_writes=1)
        return {"runs": [{"run_id": "r0123456789abcdef", "kind": "fine-tune", "stage": "training", "x": 1}]}

    result = obs.invoke("on_file_ready", lambda event, context: asyncio.run(work()), b"{}", Context())
    [summary] = parsed(lines)
    assert (summary["bailian_calls"], summary["oss_reads"], summary["oss_writes"]) == (3, 3, 1)
    assert summary["did"] == {
        "runs": [{"run_id": "r0123456789abcdef", "kind": "fine-tune", "stage": "training"}],
        "run_count": 1,
    }
    assert result["runs"]
