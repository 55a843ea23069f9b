"""Both store backends, for suites that run once per backend; importable from any test folder (`pythonpath`).

A suite's fixture is then `async with open_backend(request, tmp_path) as backend: yield backend`, parametrised
with `params=BACKENDS`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bailian_flow.store import FileStore, ObjectStore, OssCredentials, OssStore

BACKENDS = ["file", "oss"]


def emulator_store(emulator_url: str, bucket_prefix: str = "flow-test") -> OssStore:
    """An OssStore on the emulator's OSS subset, in a fresh bucket: tests stay isolated without a reset."""
    return OssStore(
        f"{bucket_prefix}-{uuid.uuid4().hex[:12]}",
        region="cn-hangzhou",
        endpoint=emulator_url,
        credentials=OssCredentials("test-id", "test-secret"),
    )


@asynccontextmanager
async def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """The backend `request.param` names: a FileStore under `tmp_path`, or an OssStore on the `emulator` fixture."""
    backend: ObjectStore
    if request.param == "file":
        backend = FileStore(tmp_path / "bucket")
    else:
        backend = emulator_store(request.getfixturevalue("emulator").url)
    try:
        yield backend
    finally:
        await backend.close()


async def keys(store: ObjectStore, prefix: str, start_after: str | None = None) -> list[str]:
    return [info.key async for info in store.list(prefix, start_after=start_after)]
