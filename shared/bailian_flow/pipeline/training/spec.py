"""The training leg's part of a kind spec (see `delivery/spec.py` for the leg after it)."""

from __future__ import annotations

from bailian_flow.pipeline.delivery import spec as delivery
from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener

FACTS: dict[str, str] = {
    "file-ready": "training.stages:step_file_ready",
    "training": "training.stages:poll_training",
}
ACTS: dict[str, str] = {"starting-job": "training.stages:act_start_job"}
ON_FILE_READY: frozenset[str] = frozenset({"file-ready", "starting-job"})
FOLLOWS: dict[str, tuple[str, str, str]] = {"training": ("fine-tune", "job_id", "job_status")}
# A run recording one of these is still at `training` only because its commit was lost (`KindSpec.settled`).
SETTLED: dict[str, frozenset[str]] = {"training": frozenset({"SUCCEEDED", "FAILED", "CANCELED"})}
REANNOUNCE: dict[str, str] = {"file-ready": "file-ready", "starting-job": "file-ready"}
TRIGGERING: frozenset[str] = frozenset({"file-ready"})


def uploading_kind(name: str, upload_module: str, suffix: str) -> KindSpec:
    """The spec of a kind whose runs upload a dataset (its own `upload_module`: `step_received`, `act_upload`), then
    take the training and delivery legs; datasets under the datasets prefix ending in `suffix` open its runs."""
    return KindSpec(
        name=name,
        uses=frozenset({"fine-tune"}),
        facts={
            "received": f"{upload_module}:step_received",
            "requested": f"{upload_module}:step_received",
            **FACTS,
            **delivery.FACTS,
        },
        acts={"uploading": f"{upload_module}:act_upload", **ACTS, **delivery.ACTS},
        handled_by={
            "on_upload": frozenset({"received", "requested", "uploading"}),
            "on_file_ready": ON_FILE_READY,
            "on_success": delivery.ON_SUCCESS,
        },
        follows={**FOLLOWS, **delivery.FOLLOWS},
        settled={**SETTLED, **delivery.SETTLED},
        reannounce={
            # `received` has no trigger of its own (on_upload writes it while already at work): re-announced as
            # `requested`, whose marker does.
            "received": "requested",
            "requested": "requested",
            "uploading": "requested",
            **REANNOUNCE,
            **delivery.REANNOUNCE,
        },
        triggering=frozenset({"requested"}) | TRIGGERING | delivery.TRIGGERING,
        openers=(Opener(prefix_setting="datasets_prefix", suffix=suffix, open="protocol.intake:open_run_for_object"),),
    )
