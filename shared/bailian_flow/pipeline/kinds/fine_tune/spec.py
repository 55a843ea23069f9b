"""The fine-tune kind: a dataset under the datasets prefix → a Bailian file → a fine-tune → the delivery leg."""

from __future__ import annotations

from bailian_flow.pipeline.delivery import spec as delivery
from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener

SPEC = KindSpec(
    name="fine-tune",
    uses=frozenset({"fine-tune"}),
    facts={
        "received": "kinds.fine_tune.upload:step_received",
        "requested": "kinds.fine_tune.upload:step_received",
        "file-ready": "kinds.fine_tune.training:step_file_ready",
        "training": "kinds.fine_tune.training:poll_training",
        **delivery.FACTS,
    },
    acts={
        "uploading": "kinds.fine_tune.upload:act_upload",
        "starting-job": "kinds.fine_tune.training:act_start_job",
        **delivery.ACTS,
    },
    handled_by={
        "on_upload": frozenset({"received", "requested", "uploading"}),
        "on_file_ready": frozenset({"file-ready", "starting-job"}),
        "on_success": delivery.ON_SUCCESS,
    },
    follows={"training": ("fine-tune", "job_id", "job_status"), **delivery.FOLLOWS},
    reannounce={
        # `received` has no trigger of its own (on_upload writes it while already at work): re-announced as
        # `requested`, whose marker does.
        "received": "requested",
        "requested": "requested",
        "uploading": "requested",
        "file-ready": "file-ready",
        "starting-job": "file-ready",
        **delivery.REANNOUNCE,
    },
    triggering=frozenset({"requested", "file-ready"}) | delivery.TRIGGERING,
    openers=(Opener(prefix_setting="datasets_prefix", suffix=".jsonl", open="protocol.intake:open_run_for_object"),),
)
