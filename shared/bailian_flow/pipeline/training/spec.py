"""The training leg's part of a kind spec (see `delivery/spec.py` for the leg after it)."""

from __future__ import annotations

FACTS: dict[str, str] = {
    "file-ready": "training.stages:step_file_ready",
    "training": "training.stages:poll_training",
}
ACTS: dict[str, str] = {"starting-job": "training.stages:act_start_job"}
ON_FILE_READY: frozenset[str] = frozenset({"file-ready", "starting-job"})
FOLLOWS: dict[str, tuple[str, str, str]] = {"training": ("fine-tune", "job_id", "job_status")}
REANNOUNCE: dict[str, str] = {"file-ready": "file-ready", "starting-job": "file-ready"}
TRIGGERING: frozenset[str] = frozenset({"file-ready"})
