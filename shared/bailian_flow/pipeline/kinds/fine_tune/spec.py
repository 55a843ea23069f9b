"""The fine-tune kind: a dataset under the datasets prefix → a Bailian file → a fine-tune → the delivery leg."""

from __future__ import annotations

from bailian_flow.pipeline.training.spec import uploading_kind

SPEC = uploading_kind("fine-tune", "kinds.fine_tune.upload", ".jsonl")
