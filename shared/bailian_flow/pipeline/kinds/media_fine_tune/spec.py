"""The media fine-tune kind: `datasets/**.zip` → checked by ranged reads → a Bailian file → a fine-tune → the
delivery leg. Wan image-to-video models and Qwen-VL models (a VL dataset in the packed form: `bailian-flow put`
packs a JSONL with local images into one)."""

from __future__ import annotations

from bailian_flow.pipeline.training.spec import uploading_kind

SPEC = uploading_kind("media-fine-tune", "kinds.media_fine_tune.upload", ".zip")
