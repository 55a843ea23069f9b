"""Stream a dataset from the store to Bailian, validating it in the same pass.

Memory stays flat: chunks flow store → validator → multipart body. A dataset error raised mid-stream aborts the
upload (the server never sees a complete body, so no file is made) and is reported with file, line and field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bailian_flow.pipeline.runtime import Flow
from bailian_flow.validate import DatasetError, DatasetValidator, kind_for_training_type, safe_file_name


@dataclass
class IngestResult:
    file_id: str
    records: int
    warnings: list[str] = field(default_factory=list)


class SourceMissing(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"object {key} does not exist (deleted before it was processed?)")
        self.key = key


async def ingest(flow: Flow, key: str, *, training_type: str, description: str) -> IngestResult:
    info = await flow.store.head(key)
    if info is None:
        raise SourceMissing(key)
    validator = DatasetValidator(kind_for_training_type(training_type), object_name=key)
    failures: list[DatasetError] = []
    stats_holder: list[IngestResult] = []

    async def validated() -> AsyncIterator[bytes]:
        try:
            async for chunk in flow.store.stream(key):
                validator.feed(chunk)
                yield chunk
            stats = validator.finish()
        except DatasetError as exc:
            # Kept aside: the HTTP library may wrap what the body generator raises.
            failures.append(exc)
            raise
        stats_holder.append(IngestResult(file_id="", records=stats.records, warnings=list(stats.warnings)))

    try:
        uploaded = await flow.client.files.upload(
            validated(),
            purpose="fine-tune",
            description=description,
            filename=safe_file_name(key),
            size=info.size,
        )
    except Exception:
        if failures:
            raise failures[0] from None
        raise
    if failures:
        raise failures[0]
    result = stats_holder[0] if stats_holder else IngestResult(file_id="", records=0)
    result.file_id = uploaded.file_id
    return result
