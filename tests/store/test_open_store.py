"""open_store: the configuration picks the backend; the OSS backend stays unimported until used."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bailian_flow.config import Settings
from bailian_flow.store import FileStore, OssCredentials, OssStore, open_store


def test_file_url_opens_a_file_store(tmp_path: Path) -> None:
    store = open_store(Settings(store=f"file://{tmp_path}"))
    assert isinstance(store, FileStore) and store.root == tmp_path.resolve()
    assert asyncio.run(store.put("a.json", b"{}"))
    assert (tmp_path / "a.json").read_bytes() == b"{}"


def test_store_choice_from_the_environment(tmp_path: Path) -> None:
    store = open_store(environ={"BAILIAN_FLOW_STORE": f"file://{tmp_path}"})
    assert isinstance(store, FileStore)
    oss = open_store(environ={"BAILIAN_FLOW_BUCKET": "my-bucket", "BAILIAN_FLOW_OSS_REGION": "cn-beijing"})
    assert isinstance(oss, OssStore) and (oss.bucket, oss.region) == ("my-bucket", "cn-beijing")


@pytest.mark.parametrize("bad", ["file://relative/path", "file:relative", "s3://bucket", "oss://x"])
def test_bad_store_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="store"):
        open_store(store=bad)


def test_keyword_arguments_override_settings() -> None:
    settings = Settings(bucket="from-settings", oss_region="cn-shanghai")
    store = open_store(settings, bucket="explicit")
    assert isinstance(store, OssStore) and (store.bucket, store.region) == ("explicit", "cn-shanghai")


async def test_settings_drive_an_oss_store_end_to_end(emulator: Any) -> None:
    settings = Settings.from_env(
        {
            "BAILIAN_FLOW_BUCKET": f"flow-open-{uuid.uuid4().hex[:12]}",
            "BAILIAN_FLOW_OSS_ENDPOINT": emulator.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "test-id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-secret-value",
        }
    )
    store = open_store(settings)
    assert isinstance(store, OssStore)
    assert "test-secret-value" not in repr(store)
    try:
        assert await store.put("runs/r1/00000000.json", b"{}", forbid_overwrite=True)
        assert await store.get("runs/r1/00000000.json") == b"{}"
    finally:
        await store.close()


def test_context_credentials_are_used_when_settings_have_none() -> None:
    context = SimpleNamespace(credentials={"access_key_id": "ctx-id", "access_key_secret": "ctx-secret"})
    store = open_store(Settings(), context)
    assert isinstance(store, OssStore)
    assert store._credentials == OssCredentials("ctx-id", "ctx-secret", None)


def test_importing_the_store_does_not_import_the_oss_sdk() -> None:
    code = (
        "import sys, bailian_flow.store, bailian_flow.runlog, bailian_flow.fc; "
        "heavy = [m for m in ('alibabacloud_oss_v2', 'aiohttp') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
