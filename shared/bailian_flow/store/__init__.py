"""Object storage: one async protocol, an OSS backend and a local-filesystem backend.

```python
from bailian_flow.store import open_store
store = open_store(settings, context)
if await store.put("runs/r1/00000000.json", data, forbid_overwrite=True): ...
```
"""

from __future__ import annotations

from bailian_flow.store._base import (
    DEFAULT_CHUNK_SIZE,
    MAX_RANGE_BYTES,
    InvalidKeyError,
    ObjectChangedError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    StoreError,
    bare_etag,
)
from bailian_flow.store._file import FileStore
from bailian_flow.store._open import open_store
from bailian_flow.store._oss import OssCredentials, OssStore

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_RANGE_BYTES",
    "FileStore",
    "InvalidKeyError",
    "ObjectChangedError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "OssCredentials",
    "OssStore",
    "StoreError",
    "bare_etag",
    "open_store",
]
