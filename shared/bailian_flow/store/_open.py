"""Pick the backend the configuration names: `oss` (default) or `file:///abs/path`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

from bailian_flow.store._base import ObjectStore
from bailian_flow.store._file import FileStore
from bailian_flow.store._oss import DEFAULT_REGION, OssCredentials, OssStore


def open_store(
    settings: Any = None,
    context: Any = None,
    *,
    store: str | None = None,
    bucket: str | None = None,
    endpoint: str | None = None,
    region: str | None = None,
    credentials: OssCredentials | None = None,
    environ: Mapping[str, str] | None = None,
) -> ObjectStore:
    """Build the store for `settings` (a `bailian_flow.config.Settings`), keyword arguments overriding it.

    Without settings, the same environment variables `Settings.from_env` reads are used. `context` is the FC
    context: on python3.10 it carries the function's credentials.
    """
    env = os.environ if environ is None else environ

    def pick(explicit: str | None, attribute: str, variable: str) -> str | None:
        if explicit:
            return explicit
        if settings is not None:
            value = getattr(settings, attribute, None)
            return str(value) if value else None
        return env.get(variable) or None

    url = pick(store, "store", "BAILIAN_FLOW_STORE") or "oss"
    if url.startswith("file:"):
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not os.path.isabs(path):
            raise ValueError(f"file store URL must be file:///absolute/path, got {url!r}")
        return FileStore(path)
    if url != "oss":
        raise ValueError(f"unknown store {url!r}: expected 'oss' or 'file:///absolute/path'")

    if credentials is None and settings is not None:
        # Settings holds the same variables the OSS backend would read; taking them keeps one source of truth.
        credentials = OssCredentials.from_context(SimpleNamespace(credentials=settings))
    oss_region = pick(region, "oss_region", "BAILIAN_FLOW_OSS_REGION") or env.get("FC_REGION")
    return OssStore(
        pick(bucket, "bucket", "BAILIAN_FLOW_BUCKET") or "bailian-flow",
        region=oss_region or DEFAULT_REGION,
        endpoint=pick(endpoint, "oss_endpoint", "BAILIAN_FLOW_OSS_ENDPOINT"),
        credentials=credentials,
        context=context,
    )
