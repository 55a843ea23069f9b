"""Stream a dataset from the store to Bailian, validating it in the same pass.

Memory stays flat: chunks flow store → validator → multipart body. A dataset error raised mid-stream aborts the
upload (the server never sees a complete body, so no file is made) and is reported with file, line and field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bailian_flow.pipeline.protocol.cleanup import delete_file
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.store import ObjectChangedError, bare_etag
from bailian_flow.validate import (
    MAX_REPORTED_ERRORS,
    DatasetError,
    DatasetValidator,
    kind_for_training_type,
    validating,
)


@dataclass
class IngestResult:
    file_id: str
    records: int
    warnings: list[str] = field(default_factory=list)
    tokens: int | None = None  # Qwen tokens of the valid records, when the tokenizer is installed


class SourceMissing(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"object {key} does not exist (deleted before it was processed?)")
        self.key = key


class SourceSuperseded(LookupError):
    """The object now holds another version than the one the run was opened for (`newer_etag`, if any)."""

    def __init__(self, key: str, newer_etag: str | None) -> None:
        super().__init__(f"object {key} was overwritten by a newer version")
        self.key = key
        self.newer_etag = newer_etag


async def _superseded(flow: Flow, key: str) -> SourceSuperseded:
    info = await flow.store.head(key)
    return SourceSuperseded(key, info.etag if info else None)


async def ingest(
    flow: Flow, key: str, *, training_type: str, description: str, filename: str, etag: str | None = None
) -> IngestResult:
    """Validate `key` while uploading it; with `etag`, only that version of it (SourceSuperseded otherwise)."""
    from bailian_flow.estimate import QwenTokens, counter_loading

    # Qwen tokens of every valid record, so that the run knows its cost before its job starts: the tokenizer loads
    # in a thread meanwhile (bench/tokens.py).
    loading = counter_loading()
    info = await flow.store.head(key)
    if info is None:
        raise SourceMissing(key)
    if etag is not None and bare_etag(etag).upper() != info.etag.upper():
        raise SourceSuperseded(key, info.etag)
    # Every problem of the file (up to the cap) goes on the failed run; none of its bytes after the first reach Bailian.
    kind = kind_for_training_type(training_type)
    counter: QwenTokens | None = None
    tokens = 0

    def count(record: Any) -> None:
        nonlocal tokens, counter
        if counter is None and loading is not None:
            counter = loading()
        if counter is not None:
            tokens += counter.record_tokens(record, kind)

    validator = DatasetValidator(
        kind, object_name=key, max_errors=MAX_REPORTED_ERRORS, on_record=count if loading is not None else None
    )
    failures: list[DatasetError | ObjectChangedError] = []

    async def validated() -> AsyncIterator[bytes]:
        try:
            # Every ranged read carries If-Match: an overwrite mid-stream cannot splice another version in.
            async for chunk in validating(flow.store.stream(key, if_match=etag or info.etag), validator):
                yield chunk
        except (DatasetError, ObjectChangedError) as exc:
            # Kept aside: the HTTP library may wrap what the body generator raises.
            failures.append(exc)
            raise

    try:
        uploaded = await flow.client.files.upload(
            validated(),
            purpose="fine-tune",
            description=description,
            filename=filename,
            size=info.size,
        )
    except Exception:
        if failures:
            raise await _as_raised(flow, key, failures[0]) from None
        raise
    stats = validator.stats
    if failures or stats is None:
        # The server stored a file from a body we did not finish validating (it answered early, or the HTTP
        # library ended the body cleanly when our generator raised): nobody may train on it, and no run records it.
        await delete_file(flow, uploaded.file_id)
        if failures:
            raise await _as_raised(flow, key, failures[0])
        raise RuntimeError(f"upload of {key} answered before its body was sent; the file it made is deleted")
    return IngestResult(
        file_id=uploaded.file_id,
        records=stats.records,
        warnings=list(stats.warnings),
        tokens=tokens if loading is not None and (counter is not None or stats.records == 0) else None,
    )


async def _as_raised(flow: Flow, key: str, failure: DatasetError | ObjectChangedError) -> Exception:
    return await _superseded(flow, key) if isinstance(failure, ObjectChangedError) else failure
