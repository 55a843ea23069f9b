"""The delivery leg's part of a kind spec: the stages after a model exists (deploy, or import then deploy).

A kind whose runs end in a deployment (a fine-tune, an import) merges these into its `KindSpec`.
"""

from __future__ import annotations

FACTS: dict[str, str] = {
    "job-succeeded": "delivery.stages:step_job_succeeded",
    "import-running": "delivery.stages:poll_import",
    "deployment-pending": "delivery.stages:poll_deployment",
}
ACTS: dict[str, str] = {
    "importing": "delivery.stages:act_import",
    "deploying": "delivery.stages:act_deploy",
}
ON_SUCCESS: frozenset[str] = frozenset({"job-succeeded", "importing", "deploying"})
# Polled stage -> (bulk family, id field, status field; "" = any status but PENDING/RUNNING has moved).
FOLLOWS: dict[str, tuple[str, str, str]] = {
    "import-running": ("import", "import_job_id", ""),
    "deployment-pending": ("deployment", "deployed_model", "deployment_status"),
}
SETTLED: dict[str, frozenset[str]] = {"deployment-pending": frozenset({"RUNNING", "FAILED"})}
REANNOUNCE: dict[str, str] = {
    "job-succeeded": "job-succeeded",
    "importing": "job-succeeded",
    "deploying": "job-succeeded",
}
TRIGGERING: frozenset[str] = frozenset({"job-succeeded"})
