"""The media fine-tune kind: `datasets/**.zip` → checked by ranged reads → a Bailian file → a fine-tune → the
delivery leg. Wan image-to-video models and Qwen-VL models (a VL dataset in the packed form: `bailian-flow put`
packs a JSONL with local images into one)."""

from __future__ import annotations

from bailian_flow.pipeline.delivery import spec as delivery
from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener
from bailian_flow.pipeline.training import spec as training

SPEC = KindSpec(
    name="media-fine-tune",
    uses=frozenset({"fine-tune"}),
    facts={
        "received": "kinds.media_fine_tune.upload:step_received",
        "requested": "kinds.media_fine_tune.upload:step_received",
        **training.FACTS,
        **delivery.FACTS,
    },
    acts={
        "uploading": "kinds.media_fine_tune.upload:act_upload",
        **training.ACTS,
        **delivery.ACTS,
    },
    handled_by={
        "on_upload": frozenset({"received", "requested", "uploading"}),
        "on_file_ready": training.ON_FILE_READY,
        "on_success": delivery.ON_SUCCESS,
    },
    follows={**training.FOLLOWS, **delivery.FOLLOWS},
    settled={**training.SETTLED, **delivery.SETTLED},
    reannounce={
        "received": "requested",
        "requested": "requested",
        "uploading": "requested",
        **training.REANNOUNCE,
        **delivery.REANNOUNCE,
    },
    triggering=frozenset({"requested"}) | training.TRIGGERING | delivery.TRIGGERING,
    openers=(Opener(prefix_setting="datasets_prefix", suffix=".zip", open="protocol.intake:open_run_for_object"),),
)
