"""Streaming validators for Bailian training data (SFT, DPO, CPT JSONL), bailian-api.md §9.

The pipeline validates a dataset in the same pass that streams it from OSS to Bailian, so a bad file aborts
the upload: `async for chunk in validating(store.stream(key), DatasetValidator("sft", object_name=key))`.
Memory stays flat: only the current line is buffered.
"""

from __future__ import annotations

from ._batch import MAX_BATCH_LINE_BYTES, BatchLine, ThinkingModes, check_batch_line
from ._errors import DatasetError, DatasetKind, DatasetStats
from ._names import MAX_STEM_LENGTH, check_file_name, kind_for_training_type, safe_file_name
from ._stream import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    FILE_API_MAX_BYTES,
    MAX_REPORTED_ERRORS,
    RECOMMENDED_RECORDS,
    DatasetValidator,
    feed_file,
    validate_file,
    validating,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "FILE_API_MAX_BYTES",
    "MAX_BATCH_LINE_BYTES",
    "MAX_REPORTED_ERRORS",
    "MAX_STEM_LENGTH",
    "RECOMMENDED_RECORDS",
    "BatchLine",
    "DatasetError",
    "DatasetKind",
    "DatasetStats",
    "DatasetValidator",
    "ThinkingModes",
    "check_batch_line",
    "check_file_name",
    "feed_file",
    "kind_for_training_type",
    "safe_file_name",
    "validate_file",
    "validating",
]
