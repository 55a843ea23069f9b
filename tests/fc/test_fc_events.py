"""FC event models against golden payloads, malformed shapes, and keys in every encoding FC might use."""

from __future__ import annotations

import base64
import json
import time

import pytest
from events import event_names, load_event, load_event_json

from bailian_flow.fc import (
    Context310,
    Context312,
    Credentials,
    Deadline,
    HttpResponse,
    InvalidEvent,
    decode_object_key,
    make_context,
    parse_http_event,
    parse_oss_event,
    parse_timer_event,
)
from bailian_flow.store import OssCredentials


def test_every_golden_fixture_parses_with_its_parser() -> None:
    parsers = {"oss": parse_oss_event, "timer": parse_timer_event, "http": parse_http_event}
    names = event_names()
    assert len(names) == 8
    for name in names:
        parsers[name.split("_")[0]](load_event(name))


def test_oss_put_reference_event() -> None:
    event = parse_oss_event(load_event("oss_put"))
    (record,) = event.events
    assert record.event_name == "ObjectCreated:PutObject"
    assert record.is_created and not record.is_removed
    assert record.bucket_name == "testbucket"
    assert record.object_key == "source/a.png"
    assert record.etag == "688A7BF4F233DC9C88A80BF985AB****"
    assert record.size == 122539
    assert record.region == "cn-hangzhou"
    assert record.oss.rule_id.startswith("9adac8e2")
    assert record.response_elements == {"requestId": "58F9FF2D3DF792092E12044C"}


@pytest.mark.parametrize(
    ("name", "event_name", "key"),
    [
        ("oss_post", "ObjectCreated:PostObject", "datasets/sft/train.jsonl"),
        ("oss_multipart", "ObjectCreated:CompleteMultipartUpload", "datasets/big/train.jsonl"),
    ],
)
def test_oss_creation_variants(name: str, event_name: str, key: str) -> None:
    (record,) = parse_oss_event(load_event(name)).events
    assert record.event_name == event_name and record.is_created and record.object_key == key


def test_multipart_etag_is_kept_whole() -> None:
    (record,) = parse_oss_event(load_event("oss_multipart")).events
    assert record.etag == "A3B1C5D7E9F1A3B5C7D9E1F3A5B7C9D1-3"


def test_encoded_key_with_spaces_and_plus_decodes() -> None:
    (record,) = parse_oss_event(load_event("oss_key_spaces_encoded")).events
    assert record.raw_key == "datasets/my+team/train%20set%2Bv2.jsonl"
    # '+' is a space in an encoded key, '%2B' a real plus.
    assert record.object_key == "datasets/my team/train set+v2.jsonl"
    assert record.key_candidates == [record.object_key, record.raw_key]


def test_unicode_key_raw_or_encoded_decodes_to_the_same_key() -> None:
    raw, encoded = parse_oss_event(load_event("oss_key_unicode")).events
    assert raw.object_key == "datasets/数据/训练 集.jsonl"
    assert encoded.object_key == raw.object_key
    assert raw.key_candidates == [raw.object_key]


@pytest.mark.parametrize(
    ("sent", "meant"),
    [
        ("datasets/a+b.jsonl", "datasets/a+b.jsonl"),  # no escape at all: taken literally
        ("datasets/a b.jsonl", "datasets/a b.jsonl"),
        ("datasets/100%.jsonl", "datasets/100%.jsonl"),  # '%' that is not an escape
        ("datasets/a%2Fb.jsonl", "datasets/a/b.jsonl"),
        ("datasets/%E6%95%B0.jsonl", "datasets/数.jsonl"),
        ("datasets/%FF%FE.jsonl", "datasets/%FF%FE.jsonl"),  # not UTF-8 once decoded: keep as sent
    ],
)
def test_decode_object_key(sent: str, meant: str) -> None:
    assert decode_object_key(sent) == meant


def test_event_name_with_trigger_prefix_is_normalised() -> None:
    raw = load_event_json("oss_put")
    raw["events"][0]["eventName"] = "oss:ObjectRemoved:DeleteObject"
    (record,) = parse_oss_event(raw).events
    assert record.event_name == "ObjectRemoved:DeleteObject" and record.is_removed and not record.is_created


def test_unknown_fields_are_kept() -> None:
    raw = load_event_json("oss_put")
    raw["events"][0]["oss"]["object"]["versionId"] = "v1"
    (record,) = parse_oss_event(json.dumps(raw)).events
    assert record.oss.object.model_extra == {"versionId": "v1"}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["events"][0]["oss"]["object"].pop("key"), "events.0.oss.object.key: Field required"),
        (lambda e: e["events"][0]["oss"]["object"].update(key=""), "events.0.oss.object.key"),
        (lambda e: e["events"][0]["oss"]["bucket"].update(name=7), "events.0.oss.bucket.name"),
        (lambda e: e["events"][0].pop("eventName"), "events.0.eventName: Field required"),
        (lambda e: e["events"][0]["oss"]["object"].update(size="big"), "events.0.oss.object.size"),
        (lambda e: e.update(events=[]), "events: List should have at least 1 item"),
        (lambda e: e.pop("events"), "events: Field required"),
    ],
)
def test_bad_oss_shapes_name_the_field(mutate: object, reason: str) -> None:
    raw = load_event_json("oss_put")
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(InvalidEvent) as caught:
        parse_oss_event(json.dumps(raw).encode())
    assert reason in str(caught.value)
    assert "pydantic" not in str(caught.value)  # a reason, not a library trace or URL


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "OSS event is not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"events": "\xff"}', "not UTF-8"),
    ],
)
def test_unreadable_oss_events(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_oss_event(raw)


def test_invalid_event_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"timer event: triggerName: Field required"):
        parse_timer_event({"triggerTime": "2023-12-26T07:49:00Z"})


def test_timer_event() -> None:
    event = parse_timer_event(load_event("timer"))
    assert (event.trigger_time, event.trigger_name, event.payload) == (
        "2023-12-26T07:49:00Z",
        "timer-trigger",
        "awesome-fc",
    )
    with pytest.raises(InvalidEvent, match="payload"):
        parse_timer_event({"triggerTime": "t", "triggerName": "n", "payload": {"not": "a string"}})


def test_http_get_reference_event() -> None:
    event = parse_http_event(load_event("http_get"))
    assert event.method == "GET" and event.path == "/example"
    assert event.header("HEADER2") == "value1,value2"
    assert event.header("missing") is None
    assert event.query == {"parameter1": "value1", "parameter2": "value1,value2"}
    assert event.decoded_body() == b"Hello FC!"
    assert event.request_context.request_id == "1-64f6cd87-*************"
    with pytest.raises(InvalidEvent, match="body: not JSON"):
        event.json_body()


def test_http_post_base64_body() -> None:
    event = parse_http_event(load_event("http_post_base64"))
    assert event.method == "POST"
    assert event.path == "/runs new" and event.raw_path == "/runs%20new"
    assert event.header("authorization") == "Bearer test-token"
    assert event.json_body() == {"oss_key": "datasets/数据/train.jsonl", "settings": {"model": "qwen3-8b"}}


def test_http_bad_shapes() -> None:
    raw = load_event_json("http_get")
    del raw["requestContext"]["http"]["method"]
    with pytest.raises(InvalidEvent, match=r"requestContext\.http\.method: Field required"):
        parse_http_event(raw)
    raw = load_event_json("http_get")
    raw.update(isBase64Encoded=True, body="***not base64***")
    with pytest.raises(InvalidEvent, match="not base64"):
        parse_http_event(raw).decoded_body()


def test_http_response_shapes() -> None:
    assert HttpResponse.json({"run": {"run_id": "r1"}}, 202).to_fc() == {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json"},
        "isBase64Encoded": False,
        "body": '{"run":{"run_id":"r1"}}',
    }
    binary = HttpResponse(200, {"Content-Type": "application/octet-stream"}, b"\xff\x00").to_fc()
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\x00"
    assert HttpResponse.text("ok").to_fc()["body"] == "ok"
    assert json.loads(HttpResponse.error(401, "Unauthorized", "bearer token required").to_fc()["body"]) == {
        "code": "Unauthorized",
        "message": "bearer token required",
    }


def test_contexts_have_each_runtimes_attributes() -> None:
    creds = Credentials("id", "secret-value", "token-value")
    old = make_context("on_upload", "python3.10", request_id="req-1", credentials=creds, timeout=120)
    assert isinstance(old, Context310)
    assert (old.request_id, old.function.name, old.function.timeout) == ("req-1", "on_upload", 120)
    assert old.credentials is not None and old.credentials.access_key_id == "id"
    assert old.service.name == "on_upload"
    assert "secret-value" not in repr(old) and "token-value" not in repr(old)
    # The store reads a python3.10 context's credentials.
    assert OssCredentials.from_context(old) == OssCredentials("id", "secret-value", "token-value")

    new = make_context("on_timer", memory=1024)
    assert isinstance(new, Context312)
    assert not hasattr(new, "credentials")
    assert new.function.memory == 1024 and new.request_id and new.logger.name == "fc.on_timer"
    assert OssCredentials.from_context(new) is None
    with pytest.raises(ValueError, match=r"python3\.12"):
        make_context("f", "python3.12", credentials=creds)


def test_deadline_from_context_timeout() -> None:
    context = make_context("on_timer", timeout=60)
    started = time.monotonic() - 59.5
    deadline = Deadline.for_context(context, started=started)
    assert 0 < deadline.remaining() <= 0.5
    assert deadline.remaining_ms() <= 500
    assert deadline.expired(margin=1.0) and not Deadline.for_context(context).expired(margin=1.0)
    assert Deadline.for_context(object(), default_timeout=5).remaining() > 4
