"""OSS trigger events (`{"events": [record, ...]}`) and timer trigger events.

Object keys: whether FC URL-encodes the key in an OSS event is undocumented (OSS's own notifications do),
so `object_key` accepts both. A key is taken as encoded only when it contains a valid `%XX` escape and
decodes to valid UTF-8; it is then decoded with `unquote_plus`. Treating `+` as a space there is safe: every
URL encoder writes a literal `+` as `%2B`, so in an encoded key a bare `+` can only stand for a space. A key
without any `%XX` escape is returned exactly as sent (so `a+b.jsonl` stays `a+b.jsonl`). The remaining
ambiguity (a raw key that happens to contain `%20`) cannot be settled from the event alone:
`key_candidates` lists the decoded and the raw key, for a handler that HEADs them in turn.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from pydantic import Field, field_validator

from bailian_flow.fc._base import EventModel, load_event_object, validate_event

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

CREATED_PREFIX = "ObjectCreated:"
REMOVED_PREFIX = "ObjectRemoved:"


def decode_object_key(raw: str) -> str:
    """The object's real key from the key as an event carries it (see the module docstring)."""
    if not _ESCAPE.search(raw):
        return raw
    try:
        return unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        return raw


class OssBucket(EventModel):
    name: str = Field(min_length=1)
    arn: str = ""
    owner_identity: str = Field("", alias="ownerIdentity")
    virtual_bucket: str = Field("", alias="virtualBucket")


class OssObject(EventModel):
    key: str = Field(min_length=1)
    etag: str | None = Field(None, alias="eTag")
    size: int | None = None
    delta_size: int | None = Field(None, alias="deltaSize")


class OssDetail(EventModel):
    bucket: OssBucket
    object: OssObject
    oss_schema_version: str = Field("", alias="ossSchemaVersion")
    rule_id: str = Field("", alias="ruleId")


class OssEventRecord(EventModel):
    event_name: str = Field(alias="eventName", min_length=1)
    event_source: str = Field("acs:oss", alias="eventSource")
    event_time: str = Field("", alias="eventTime")
    event_version: str = Field("", alias="eventVersion")
    oss: OssDetail
    region: str = ""
    request_parameters: dict[str, Any] = Field(default_factory=dict, alias="requestParameters")
    response_elements: dict[str, Any] = Field(default_factory=dict, alias="responseElements")
    user_identity: dict[str, Any] = Field(default_factory=dict, alias="userIdentity")

    @field_validator("event_name")
    @classmethod
    def _without_oss_prefix(cls, value: str) -> str:
        # Payloads say `ObjectCreated:PutObject`, trigger configs `oss:ObjectCreated:PutObject`: accept both.
        return value.removeprefix("oss:")

    @property
    def raw_key(self) -> str:
        return self.oss.object.key

    @property
    def object_key(self) -> str:
        return decode_object_key(self.oss.object.key)

    @property
    def key_candidates(self) -> list[str]:
        """The decoded key first, then the key as sent when it differs."""
        decoded, raw = self.object_key, self.raw_key
        return [decoded] if decoded == raw else [decoded, raw]

    @property
    def bucket_name(self) -> str:
        return self.oss.bucket.name

    @property
    def etag(self) -> str | None:
        etag = self.oss.object.etag
        return etag.strip().strip('"') if etag else None

    @property
    def size(self) -> int | None:
        return self.oss.object.size

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith(CREATED_PREFIX)

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith(REMOVED_PREFIX)


class OssEvent(EventModel):
    events: list[OssEventRecord] = Field(min_length=1)


class TimerEvent(EventModel):
    trigger_time: str = Field(alias="triggerTime", min_length=1)
    trigger_name: str = Field(alias="triggerName", min_length=1)
    # The trigger's configured payload, always a string (possibly JSON the function parses itself).
    payload: str = ""


def parse_oss_event(raw: bytes | bytearray | str | dict[str, Any]) -> OssEvent:
    return validate_event(OssEvent, load_event_object(raw, "OSS"), "OSS")


def parse_timer_event(raw: bytes | bytearray | str | dict[str, Any]) -> TimerEvent:
    return validate_event(TimerEvent, load_event_object(raw, "timer"), "timer")
