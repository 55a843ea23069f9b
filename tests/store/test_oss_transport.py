"""OssStore's own HTTP under the emulator's fault injection: retries, the lost-answer create, error mapping,
secrets, and a cold import that never loads the vendor SDK."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from emulator_support import Emulator
from store_support import emulator_store, keys

from bailian_flow.store import OssCredentials, OssStore, StoreError
from bailian_flow.store import _oss as oss_module

KEY = "runs/r1/00000000.json"


@pytest.fixture
def faults(emulator: Emulator) -> Iterator[Emulator]:
    try:
        yield emulator
    finally:
        emulator.clear_faults()


@pytest.fixture
async def store(emulator: Emulator) -> AsyncIterator[OssStore]:
    backend = emulator_store(emulator.url, "flow-http")
    try:
        yield backend
    finally:
        await backend.close()


def object_path(store: OssStore, key: str = KEY) -> str:
    return f"/{store.bucket}/{key}"


async def test_reads_survive_a_503_and_a_dropped_connection(store: OssStore, faults: Emulator) -> None:
    assert await store.put(KEY, b"entry")
    faults.add_faults(
        {"method": "GET", "path": object_path(store), "times": 1, "status": 503},
        {"method": "HEAD", "path": object_path(store), "times": 1, "drop": "before"},
        {"method": "GET", "path": f"/{store.bucket}/", "times": 1, "drop": "before"},
    )
    assert await store.get(KEY) == b"entry"
    info = await store.head(KEY)
    assert info is not None and info.size == 5
    assert await keys(store, "runs/") == [KEY]
    assert faults.fault_hits() == [1, 1, 1]


async def test_ranged_reads_retry_each_chunk(store: OssStore, faults: Emulator) -> None:
    data = os.urandom(100_000)
    assert await store.put("datasets/d.bin", data)
    faults.add_faults({"method": "GET", "path": object_path(store, "datasets/d.bin"), "times": 2, "status": 500})
    chunks = [chunk async for chunk in store.stream("datasets/d.bin", chunk_size=30_000)]
    assert b"".join(chunks) == data and faults.fault_hits() == [2]


async def test_create_whose_answer_was_lost_is_a_win(store: OssStore, faults: Emulator) -> None:
    # OSS stores the entry and the answer never arrives: the retry meets 409 on its own bytes.
    faults.add_faults({"method": "PUT", "path": object_path(store), "times": 1, "drop": "after"})
    assert await store.put(KEY, b"mine", forbid_overwrite=True)
    assert faults.fault_hits() == [1]
    assert await store.get(KEY) == b"mine"
    # A genuine rival, without any retry, still loses.
    assert not await store.put(KEY, b"rival", forbid_overwrite=True)


async def test_retried_create_that_meets_a_rival_still_loses(store: OssStore, faults: Emulator) -> None:
    assert await store.put(KEY, b"rival", forbid_overwrite=True)
    # Our first attempt is processed (refused: 409) and its answer lost; the retry's 409 is the rival's object.
    faults.add_faults({"method": "PUT", "path": object_path(store), "times": 1, "drop": "after"})
    assert not await store.put(KEY, b"mine", forbid_overwrite=True)
    assert faults.fault_hits() == [1]
    assert await store.get(KEY) == b"rival"


async def test_errors_carry_status_and_code_and_only_transient_ones_retry(store: OssStore, faults: Emulator) -> None:
    faults.add_faults({"method": "GET", "path": object_path(store), "status": 403, "code": "AccessDenied"})
    with pytest.raises(StoreError) as denied:
        await store.get(KEY)
    assert (denied.value.status, denied.value.code) == (403, "AccessDenied")
    assert faults.fault_hits() == [1]
    faults.clear_faults()

    faults.add_faults({"method": "DELETE", "path": object_path(store), "status": 500, "code": "InternalError"})
    with pytest.raises(StoreError) as failed:
        await store.delete(KEY)
    assert (failed.value.status, failed.value.code) == (500, "InternalError")
    assert faults.fault_hits() == [3]  # the SDK's three attempts


async def test_error_messages_never_carry_the_secret(emulator: Emulator, faults: Emulator) -> None:
    creds = OssCredentials("test-id", "the-secret-value", "the-sts-token")
    store = OssStore("flow-secret", endpoint=emulator.url, credentials=creds)
    faults.add_faults(
        {"path": "/flow-secret/*", "status": 400, "code": "InvalidArgument", "message": "got the-sts-token"}
    )
    try:
        with pytest.raises(StoreError) as raised:
            await store.get(KEY)
    finally:
        await store.close()
    text = str(raised.value) + repr(raised.value)
    assert "InvalidArgument" in text and "***" in text
    assert "the-secret-value" not in text and "the-sts-token" not in text


async def test_multipart_upload_retries_a_part(
    store: OssStore, faults: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oss_module, "PART_SIZE", 128 * 1024)  # OSS's minimum is 100 KB; keeps the test small
    data = os.urandom(300 * 1024 + 7)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 50_000):
            yield data[start : start + 50_000]

    faults.add_faults({"method": "PUT", "path": object_path(store, "out/r.jsonl"), "times": 1, "status": 503})
    await store.put_stream("out/r.jsonl", chunks(), content_type="application/jsonl")
    assert faults.fault_hits() == [1]
    assert await store.get("out/r.jsonl") == data
    info = await store.head("out/r.jsonl")
    assert info is not None and info.content_type == "application/jsonl"
    assert info.etag != hashlib.md5(data).hexdigest().upper()  # a multipart ETag: it really went up in parts


async def test_no_credentials_outside_loopback_is_an_error_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    store = OssStore("b", endpoint="http://192.0.2.1:9", region="cn-hangzhou")
    try:
        with pytest.raises(StoreError, match="no credentials"):
            await store.get(KEY)
    finally:
        await store.close()


def test_store_round_trip_never_loads_the_oss_sdk(emulator: Emulator) -> None:
    code = f"""
import asyncio, sys
from bailian_flow.store import OssCredentials, OssStore

async def main():
    store = OssStore("flow-cold", endpoint={emulator.url!r}, credentials=OssCredentials("id", "secret"))
    assert await store.put("k", b"v")
    assert await store.get("k") == b"v"
    await store.close()

asyncio.run(main())
print(",".join(m for m in ("alibabacloud_oss_v2", "requests", "urllib3", "Crypto") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


async def test_a_completion_that_may_have_been_processed_is_not_repeated(
    store: OssStore, faults: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A repeated CompleteMultipartUpload of a finished upload is a 404: the caller must hear "unknown", not "lost".
    monkeypatch.setattr(oss_module, "PART_SIZE", 128 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        yield os.urandom(200 * 1024)
        # The upload is started and its one part sent: the next POST is the completion.
        faults.add_faults({"method": "POST", "path": object_path(store, "out/c.jsonl"), "drop": "after"})

    with pytest.raises(StoreError):
        await store.put_stream("out/c.jsonl", chunks())
    assert faults.fault_hits() == [1]


@pytest.mark.parametrize(
    ("endpoint", "fc_region", "url"),
    [
        (None, None, "https://b.oss-cn-beijing.aliyuncs.com/k%201"),
        (None, "cn-beijing", "https://b.oss-cn-beijing-internal.aliyuncs.com/k%201"),
        (None, "cn-hangzhou", "https://b.oss-cn-beijing.aliyuncs.com/k%201"),
        ("oss-cn-beijing.aliyuncs.com", None, "https://b.oss-cn-beijing.aliyuncs.com/k%201"),
        ("http://oss.example.test", None, "http://b.oss.example.test/k%201"),
        ("http://127.0.0.1:9000", None, "http://127.0.0.1:9000/b/k%201"),
        ("localhost:9000", None, "https://localhost:9000/b/k%201"),
    ],
)
def test_addressing(endpoint: str | None, fc_region: str | None, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual-hosted unless the endpoint is an IP or localhost; the internal endpoint in the function's region."""
    if fc_region is None:
        monkeypatch.delenv("FC_REGION", raising=False)
    else:
        monkeypatch.setenv("FC_REGION", fc_region)
    store = OssStore("b", endpoint=endpoint, region="cn-beijing", credentials=OssCredentials("id", "secret"))
    assert store._http.url("k 1", "") == url
