"""The real `alibabacloud_oss_v2.aio.AsyncClient`, unmodified, against the emulator's OSS subset."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import alibabacloud_oss_v2 as oss
import alibabacloud_oss_v2.aio as oss_aio
import pytest
from emulator_support import Emulator

BUCKET = "sdk-bucket"
ODD_KEYS = ["datasets/with space.jsonl", "datasets/中文 数据.jsonl", "datasets/100% done+1.jsonl"]


@pytest.fixture
async def client(emulator_reset: Emulator) -> AsyncIterator[oss_aio.AsyncClient]:
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider("fake-id", "fake-secret")
    config.region = "cn-hangzhou"
    config.endpoint = emulator_reset.oss_endpoint
    config.use_path_style = True
    config.disable_ssl = True
    config.retry_max_attempts = 1
    client = oss_aio.AsyncClient(config)
    try:
        yield client
    finally:
        await client.close()


async def put(client: oss_aio.AsyncClient, key: str, body: bytes, **extra: object) -> oss.PutObjectResult:
    return await client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=key, body=body, **extra))


async def test_put_get_head_with_metadata(client: oss_aio.AsyncClient) -> None:
    body = b'{"messages": []}\n' * 100
    result = await put(
        client, "datasets/a.jsonl", body, metadata={"flow-model": "qwen3-14b"}, content_type="application/jsonl"
    )
    assert result.status_code == 200
    assert result.etag == '"' + hashlib.md5(body).hexdigest().upper() + '"'
    assert result.request_id

    got = await client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="datasets/a.jsonl"))
    assert got.body.content == body
    assert got.etag == result.etag
    assert got.content_length == len(body)
    assert got.metadata == {"flow-model": "qwen3-14b"}
    assert got.content_type == "application/jsonl"
    assert got.last_modified is not None

    head = await client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="datasets/a.jsonl"))
    assert head.content_length == len(body)
    assert head.etag == result.etag
    assert head.metadata == {"flow-model": "qwen3-14b"}


async def test_forbid_overwrite_raises_file_already_exists(client: oss_aio.AsyncClient) -> None:
    await put(client, "runs/r/00000001-start.json", b"first", forbid_overwrite=True)
    with pytest.raises(oss.exceptions.OperationError) as caught:
        await put(client, "runs/r/00000001-start.json", b"second", forbid_overwrite=True)
    error = caught.value.unwrap()
    assert isinstance(error, oss.exceptions.ServiceError)
    assert error.status_code == 409
    assert error.code == "FileAlreadyExists"
    assert error.request_id
    got = await client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="runs/r/00000001-start.json"))
    assert got.body.content == b"first"


async def test_ranged_and_conditional_gets(client: oss_aio.AsyncClient) -> None:
    result = await put(client, "r.bin", b"0123456789")
    got = await client.get_object(
        oss.GetObjectRequest(bucket=BUCKET, key="r.bin", range_header="bytes=3-6", range_behavior="standard")
    )
    assert got.status_code == 206
    assert got.body.content == b"3456"
    assert got.content_range == "bytes 3-6/10"
    pinned = await client.get_object(
        oss.GetObjectRequest(bucket=BUCKET, key="r.bin", range_header="bytes=0-1", if_match=result.etag)
    )
    assert pinned.body.content == b"01"
    with pytest.raises(oss.exceptions.OperationError) as caught:
        await client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="r.bin", if_match='"00"'))
    assert caught.value.unwrap().status_code == 412


async def test_missing_object_errors(client: oss_aio.AsyncClient) -> None:
    with pytest.raises(oss.exceptions.OperationError) as caught:
        await client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="missing"))
    assert (caught.value.unwrap().status_code, caught.value.unwrap().code) == (404, "NoSuchKey")
    with pytest.raises(oss.exceptions.OperationError) as caught:
        await client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="missing"))
    # HEAD has no body: the code comes from the x-oss-err header.
    assert (caught.value.unwrap().status_code, caught.value.unwrap().code) == (404, "NoSuchKey")


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_odd_keys_round_trip_and_list_decoded(client: oss_aio.AsyncClient, key: str) -> None:
    await put(client, key, key.encode())
    got = await client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.content == key.encode()
    listed = await client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, prefix="datasets/"))
    assert [item.key for item in listed.contents] == [key]
    await client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key=key))
    with pytest.raises(oss.exceptions.OperationError):
        await client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=key))


async def test_list_objects_v2_paginated(client: oss_aio.AsyncClient) -> None:
    keys = sorted([f"runs/r{n:02d}/00000001-start.json" for n in range(7)] + ["runs/中文/x.json", "other/x"])
    for key in keys:
        await put(client, key, b"{}")
    paginator = client.list_objects_v2_paginator(limit=3)
    pages = [page async for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET, prefix="runs/"))]
    assert len(pages) == 3
    listed = [item.key for page in pages for item in page.contents or []]
    assert listed == [key for key in keys if key.startswith("runs/")]
    first = pages[0].contents[0]
    assert first.size == 2
    assert first.etag == '"' + hashlib.md5(b"{}").hexdigest().upper() + '"'
    assert first.last_modified is not None
    assert pages[0].key_count == 3
    assert pages[-1].is_truncated is False

    folded = await client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, delimiter="/", prefix="runs/"))
    assert [p.prefix for p in folded.common_prefixes] == [f"runs/r{n:02d}/" for n in range(7)] + ["runs/中文/"]
    after = await client.list_objects_v2(
        oss.ListObjectsV2Request(bucket=BUCKET, prefix="runs/", start_after="runs/r05/00000001-start.json")
    )
    assert [item.key for item in after.contents] == ["runs/r06/00000001-start.json", "runs/中文/x.json"]


async def test_delete_is_idempotent(client: oss_aio.AsyncClient) -> None:
    await put(client, "d.txt", b"x")
    first = await client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key="d.txt"))
    assert first.status_code == 204
    again = await client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key="d.txt"))
    assert again.status_code == 204


async def test_multipart_upload_completes_into_one_object(client: oss_aio.AsyncClient) -> None:
    key = "datasets/中文 big.jsonl"
    parts = [b"a" * 100_000, b"b" * 100_000, b"tail\n"]
    started = await client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=BUCKET, key=key, metadata={"flow-model": "qwen3-14b"})
    )
    assert started.key == key
    assert started.upload_id
    uploaded = []
    for number, body in enumerate(parts, start=1):
        result = await client.upload_part(
            oss.UploadPartRequest(bucket=BUCKET, key=key, upload_id=started.upload_id, part_number=number, body=body)
        )
        assert result.etag == '"' + hashlib.md5(body).hexdigest().upper() + '"'
        uploaded.append(oss.UploadPart(part_number=number, etag=result.etag))
    done = await client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=BUCKET,
            key=key,
            upload_id=started.upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=uploaded),
        )
    )
    assert done.key == key
    assert done.etag is not None
    assert done.etag.endswith('-3"')
    got = await client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.content == b"".join(parts)
    assert got.metadata == {"flow-model": "qwen3-14b"}
    assert got.etag == done.etag


async def test_multipart_abort_and_bad_parts(client: oss_aio.AsyncClient) -> None:
    started = await client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key="m"))
    await client.upload_part(
        oss.UploadPartRequest(bucket=BUCKET, key="m", upload_id=started.upload_id, part_number=1, body=b"x")
    )
    with pytest.raises(oss.exceptions.OperationError) as caught:
        await client.complete_multipart_upload(
            oss.CompleteMultipartUploadRequest(
                bucket=BUCKET,
                key="m",
                upload_id=started.upload_id,
                complete_multipart_upload=oss.CompleteMultipartUpload(
                    parts=[oss.UploadPart(part_number=1, etag='"0000"')]
                ),
            )
        )
    assert caught.value.unwrap().code == "InvalidPart"
    await client.abort_multipart_upload(
        oss.AbortMultipartUploadRequest(bucket=BUCKET, key="m", upload_id=started.upload_id)
    )
    with pytest.raises(oss.exceptions.OperationError) as caught:
        await client.abort_multipart_upload(
            oss.AbortMultipartUploadRequest(bucket=BUCKET, key="m", upload_id=started.upload_id)
        )
    assert (caught.value.unwrap().status_code, caught.value.unwrap().code) == (404, "NoSuchUpload")
    with pytest.raises(oss.exceptions.OperationError):
        await client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="m"))
