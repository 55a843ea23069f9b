"""The fine-tune kind: a dataset under the datasets prefix → a Bailian file → a fine-tune → the delivery leg."""

from __future__ import annotations

from bailian_flow.pipeline.delivery import spec as delivery
from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener
from bailian_flow.pipeline.training import spec as training

SPEC = KindSpec(
    name="fine-tune",
    uses=frozenset({"fine-tune"}),
    facts={
        "received": "kinds.fine_tune.upload:step_received",
        "requested": "kinds.fine_tune.upload:step_received",
        **training.FACTS,
        **delivery.FACTS,
    },
    acts={
        "uploading": "kinds.fine_tune.upload:act_upload",
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
        # `received` has no trigger of its own (on_upload writes it while already at work): re-announced as
        # `requested`, whose marker does.
        "received": "requested",
        "requested": "requested",
        "uploading": "requested",
        **training.REANNOUNCE,
        **delivery.REANNOUNCE,
    },
    triggering=frozenset({"requested"}) | training.TRIGGERING | delivery.TRIGGERING,
    openers=(Opener(prefix_setting="datasets_prefix", suffix=".jsonl", open="protocol.intake:open_run_for_object"),),
)
