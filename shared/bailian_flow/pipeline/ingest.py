"""Stream a dataset from the store to Bailian, validating it in the same pass.

Memory stays flat: chunks flow store → validator → multipart body. A dataset error raised mid-stream aborts the
upload (the server never sees a complete body, so no file is made) and is reported with file, line and field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bailian_flow.pipeline.runtime import Flow
from bailian_flow.validate import DatasetError, DatasetValidator, kind_for_training_type, safe_file_name, validating


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

    async def validated() -> AsyncIterator[bytes]:
        try:
            async for chunk in validating(flow.store.stream(key), validator):
                yield chunk
        except DatasetError as exc:
            # Kept aside: the HTTP library may wrap what the body generator raises.
            failures.append(exc)
            raise

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
    stats = validator.stats
    if failures or stats is None:
        # The server answered before the body ended: it cannot have stored a file we did not finish validating.
        raise failures[0] if failures else RuntimeError(f"upload of {key} answered before its body was sent")
    return IngestResult(file_id=uploaded.file_id, records=stats.records, warnings=list(stats.warnings))
