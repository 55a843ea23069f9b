"""Which OSS trigger an emulator event record reaches: FC's bucket, event and key filters, locally."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bailian_flow.fc import parse_oss_event
from bailian_flow.local.oss_events import trigger_matches
from bailian_flow.local.spec import OssTrigger

UPLOADS = OssTrigger(
    name="uploads",
    bucket="flow",
    events=("oss:ObjectCreated:PutObject", "oss:ObjectCreated:CompleteMultipartUpload"),
    prefix="datasets/数据/",
    suffix=".jsonl",
)


def record(key: str, *, bucket: str = "flow", event: str = "ObjectCreated:PutObject") -> dict[str, Any]:
    return {
        "eventName": event,
        "eventSource": "acs:oss",
        "oss": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": "ABC", "size": 3}},
        "region": "cn-hangzhou",
    }


def test_an_encoded_key_is_filtered_as_the_handler_will_read_it() -> None:
    real = "datasets/数据/a b.jsonl"
    encoded = quote(real, safe="/")
    assert encoded != real and not encoded.startswith(UPLOADS.prefix)
    assert trigger_matches(UPLOADS, record(real))
    assert trigger_matches(UPLOADS, record(encoded))
    # The key the trigger let through is the key the handler sees.
    assert parse_oss_event({"events": [record(encoded)]}).events[0].object_key == real


def test_a_plus_matches_raw_or_encoded() -> None:
    plus = OssTrigger(name="plus", bucket="flow", events=("oss:ObjectCreated:*",), prefix="c++/", suffix="")
    assert trigger_matches(plus, record("c++/notes.jsonl"))  # no %XX escape: taken as sent
    assert trigger_matches(plus, record("c%2B%2B/notes.jsonl"))
    assert not trigger_matches(plus, record("c%20%20/notes.jsonl"))


def test_bucket_event_and_suffix_filters_refuse() -> None:
    assert not trigger_matches(UPLOADS, record("datasets/数据/a.jsonl", bucket="other"))
    assert not trigger_matches(UPLOADS, record("datasets/数据/a.jsonl", event="ObjectCreated:PostObject"))
    assert not trigger_matches(UPLOADS, record("datasets/数据/a.jsonl", event="ObjectRemoved:DeleteObject"))
    assert not trigger_matches(UPLOADS, record("datasets/数据/a.jsonl.flow.yaml"))
    assert not trigger_matches(UPLOADS, record(quote("datasets/other/a.jsonl", safe="")))
    assert not trigger_matches(UPLOADS, {"eventName": "ObjectCreated:PutObject"})  # no oss section
