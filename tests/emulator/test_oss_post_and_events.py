"""Temporary uploads (getPolicy + PostObject) and the OSS event long-poll, over raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
from emulator_support import Emulator
from yarl import URL


class Client:
    def __init__(self, session: aiohttp.ClientSession, emulator: Emulator) -> None:
        self.session = session
        self.url = emulator.url
        self.headers = {"Authorization": f"Bearer {emulator.api_key}"}

    async def policy(self, model: str = "qwen-vl-plus") -> dict[str, Any]:
        async with self.session.get(
            f"{self.url}/api/v1/uploads", params={"action": "getPolicy", "model": model}, headers=self.headers
        ) as response:
            body = await response.json()
            assert response.status == 200, body
            data: dict[str, Any] = body["data"]
            return data

    async def post_form(
        self, host: str, fields: dict[str, str], content: bytes, filename: str = "image.png"
    ) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("file", content, filename=filename, content_type="image/png")  # last, as OSS demands
        async with self.session.post(host, data=form) as response:
            return response.status, await response.read(), response.headers

    async def events(self, after: int = 0, wait: float = 0, **params: str) -> dict[str, Any]:
        async with self.session.get(
            f"{self.url}/_emulator/oss/events", params={"after": after, "wait": wait, **params}
        ) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body

    async def put(self, bucket: str, key: str, data: bytes) -> str:
        async with self.session.put(URL(f"{self.url}/{bucket}/{quote(key)}", encoded=True), data=data) as response:
            assert response.status == 200
            return response.headers["x-oss-request-id"]


@pytest.fixture
async def client(emulator_reset: Emulator) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, emulator_reset)


def form_for(policy: dict[str, Any], filename: str) -> dict[str, str]:
    return {
        "OSSAccessKeyId": policy["oss_access_key_id"],
        "policy": policy["policy"],
        "Signature": policy["signature"],
        "key": f"{policy['upload_dir']}/{filename}",
        "x-oss-object-acl": policy["x_oss_object_acl"],
        "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"],
        "success_action_status": "200",
    }


async def test_policy_has_the_documented_shape(client: Client) -> None:
    policy = await client.policy()
    assert policy["upload_host"] == f"{client.url}/dashscope-instant"
    assert policy["upload_dir"].startswith("dashscope-instant/")
    assert policy["expire_in_seconds"] == 300
    assert policy["max_file_size_mb"] == 100
    assert policy["x_oss_forbid_overwrite"] == "true"
    assert policy["x_oss_object_acl"] == "private"
    assert {"capacity_limit_mb", "oss_access_key_id", "signature"} <= set(policy)
    document = json.loads(base64.b64decode(policy["policy"]))
    assert document["expiration"].endswith("Z")
    assert ["content-length-range", 0, 100 * 1024 * 1024] in document["conditions"]


async def test_policy_needs_action_and_model(client: Client) -> None:
    for params in ({"action": "getPolicy"}, {"model": "qwen-vl-plus"}):
        async with client.session.get(
            f"{client.url}/api/v1/uploads", params=params, headers=client.headers
        ) as response:
            assert response.status == 400
            assert (await response.json())["code"] == "InvalidParameter"


async def test_temporary_upload_lands_in_the_instant_bucket(client: Client) -> None:
    policy = await client.policy()
    fields = form_for(policy, "cat.png")
    content = b"\x89PNG fake"
    status, body, headers = await client.post_form(policy["upload_host"], fields, content)
    assert status == 200, body
    assert headers["ETag"] == '"' + hashlib.md5(content).hexdigest().upper() + '"'
    key = fields["key"]  # the result is oss://<key>
    async with client.session.get(f"{client.url}/dashscope-instant/{key}") as response:
        assert response.status == 200
        assert await response.read() == content
    # Create-only, as the policy asks.
    status, body, _ = await client.post_form(policy["upload_host"], fields, b"other")
    assert status == 409
    assert b"FileAlreadyExists" in body
    events = (await client.events())["events"]
    assert [e["record"]["eventName"] for e in events] == ["ObjectCreated:PostObject"]
    assert events[0]["record"]["oss"]["bucket"]["name"] == "dashscope-instant"


async def test_expired_policy_is_refused_by_the_emulated_clock(client: Client) -> None:
    policy = await client.policy()
    async with client.session.post(f"{client.url}/_emulator/clock", json={"advance": 301}) as response:
        assert response.status == 200
    status, body, _ = await client.post_form(policy["upload_host"], form_for(policy, "late.png"), b"x")
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    assert b"Policy expired." in body


async def test_policy_conditions_are_enforced(client: Client) -> None:
    policy = await client.policy()
    outside = {**form_for(policy, "x.png"), "key": "elsewhere/x.png"}
    status, body, _ = await client.post_form(policy["upload_host"], outside, b"x")
    assert status == 403
    assert b"Policy Condition failed" in body
    forged = {**form_for(policy, "x.png"), "Signature": base64.b64encode(b"forged").decode()}
    status, body, _ = await client.post_form(policy["upload_host"], forged, b"x")
    assert status == 403
    assert b"SignatureDoesNotMatch" in body


async def test_post_object_without_policy_and_status_variants(client: Client) -> None:
    status, body, _ = await client.post_form(
        f"{client.url}/free-bucket", {"key": "up/${filename}", "success_action_status": "201"}, b"abc", "n.txt"
    )
    assert status == 201
    assert b"<Key>up/n.txt</Key>" in body
    status, body, _ = await client.post_form(f"{client.url}/free-bucket", {"key": "up/other.txt"}, b"abc")
    assert status == 204
    # The architecture's alias for the upload host reaches the same handler.
    status, _, _ = await client.post_form(f"{client.url}/_uploads/free-bucket", {"key": "up/alias.txt"}, b"abc")
    assert status == 204
    async with client.session.get(f"{client.url}/free-bucket/up/alias.txt") as response:
        assert await response.read() == b"abc"


async def test_events_record_creates_and_deletes_in_fc_shape(client: Client) -> None:
    request_id = await client.put("ev-bucket", "datasets/a.jsonl", b"12345")
    await client.put("ev-bucket", "datasets/a.jsonl", b"1234567")
    async with client.session.delete(f"{client.url}/ev-bucket/datasets/a.jsonl") as response:
        assert response.status == 204
    body = await client.events()
    events = body["events"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert body["last_seq"] == events[-1]["seq"]
    names = [e["record"]["eventName"] for e in events]
    assert names == ["ObjectCreated:PutObject", "ObjectCreated:PutObject", "ObjectRemoved:DeleteObject"]
    record = events[0]["record"]
    assert set(record) == {
        "eventName",
        "eventSource",
        "eventTime",
        "eventVersion",
        "oss",
        "region",
        "requestParameters",
        "responseElements",
        "userIdentity",
    }
    assert record["eventSource"] == "acs:oss"
    assert record["eventVersion"] == "1.0"
    time.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert record["oss"]["bucket"] == {
        "arn": "acs:oss:cn-hangzhou:1234567890:ev-bucket",
        "name": "ev-bucket",
        "ownerIdentity": "1234567890",
        "virtualBucket": "",
    }
    assert record["oss"]["object"] == {
        "deltaSize": 5,
        "eTag": hashlib.md5(b"12345").hexdigest().upper(),
        "key": "datasets/a.jsonl",
        "size": 5,
    }
    assert record["oss"]["ossSchemaVersion"] == "1.0"
    assert record["region"] == "cn-hangzhou"
    assert record["responseElements"] == {"requestId": request_id}
    assert record["requestParameters"]["sourceIPAddress"]
    assert record["userIdentity"]["principalId"]
    assert events[1]["record"]["oss"]["object"]["deltaSize"] == 2
    assert events[2]["record"]["oss"]["object"]["deltaSize"] == -7
    after = await client.events(after=events[1]["seq"])
    assert [e["seq"] for e in after["events"]] == [events[2]["seq"]]


async def test_long_poll_wakes_on_a_new_event(client: Client) -> None:
    last = (await client.events())["last_seq"]
    started = time.monotonic()
    waiter = asyncio.create_task(client.events(after=last, wait=10))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    await client.put("ev-bucket", "late.txt", b"x")
    body = await asyncio.wait_for(waiter, 5)
    assert time.monotonic() - started < 5
    assert [e["record"]["oss"]["object"]["key"] for e in body["events"]] == ["late.txt"]


async def test_long_poll_times_out_empty(client: Client) -> None:
    last = (await client.events())["last_seq"]
    started = time.monotonic()
    body = await client.events(after=last, wait=0.5)
    assert body["events"] == []
    assert body["last_seq"] == last
    assert time.monotonic() - started >= 0.45


async def test_event_keys_plain_by_default_encoded_on_request(client: Client) -> None:
    key = "datasets/中文 100%+x.jsonl"
    await client.put("ev-bucket", key, b"x")
    plain = (await client.events())["events"][0]["record"]["oss"]["object"]["key"]
    assert plain == key
    per_poll = (await client.events(encode_keys="true"))["events"][0]["record"]["oss"]["object"]["key"]
    assert per_poll != key
    assert unquote(per_poll) == key
    async with client.session.post(f"{client.url}/_emulator/oss/config", json={"encode_event_keys": True}) as r:
        assert (await r.json()) == {"encode_event_keys": True}
    flagged = (await client.events())["events"][0]["record"]["oss"]["object"]["key"]
    assert flagged == per_poll
    assert " " not in flagged
    assert "/" in flagged


async def test_reset_clears_events_but_sequence_keeps_growing(client: Client, emulator_reset: Emulator) -> None:
    await client.put("ev-bucket", "one.txt", b"x")
    before = (await client.events())["last_seq"]
    emulator_reset.reset()
    assert (await client.events())["events"] == []
    await client.put("ev-bucket", "two.txt", b"x")
    body = await client.events(after=before)
    assert [e["seq"] for e in body["events"]] == [before + 1]
    async with client.session.get(f"{client.url}/_emulator/oss/config") as response:
        assert (await response.json()) == {"encode_event_keys": False}
