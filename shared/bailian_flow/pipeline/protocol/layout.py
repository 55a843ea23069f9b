"""Where things live in the bucket, and which OSS objects trigger which function.

s.yaml's OSS trigger filters must match these values (tests/test_s_yaml.py checks it). State objects live
under `runs/`, never under the datasets prefix, so the pipeline's own writes can never trigger `on_upload`.
"""

from __future__ import annotations

from typing import TypedDict


class OssFilter(TypedDict):
    prefix: str
    suffix: str


DATASETS_PREFIX = "datasets/"
DATASET_SUFFIX = ".jsonl"
SIDECAR_SUFFIX = ".flow.yaml"
BATCHES_PREFIX = "batches/"  # batch inference inputs, one run each
RESULTS_PREFIX = "results/"  # batch outputs: results/<input path>/<run_id>/...
# Import-only runs: a marker naming custom weights already in OSS (pipeline/imports.py).
IMPORTS_PREFIX = "imports/"
IMPORT_SUFFIX = ".import.yaml"
# Base-model deployments: a marker naming a Bailian model and the plan to deploy it on.
DEPLOYMENTS_PREFIX = "deployments/"
DEPLOY_SUFFIX = ".deploy.yaml"
# Media datasets (a Wan video or packed VL fine-tune): a zip under the datasets prefix.
ZIP_SUFFIX = ".zip"
RUNS_PREFIX = "runs/"
ACTIVE_PREFIX = "active/"
INDEX_PREFIX = "index/"  # newest-first index of runs, for listing
TTL_PREFIX = "ttl/"  # deployments to undeploy, soonest first: `ttl/<expiry>-<run_id>`
# The timer's hint, under the runs prefix (timer/timer_state.py writes it; the REST API reads its quota use).
TIMER_STATE_NAME = "_timer-state.json"
# ending/<run_id>: a run whose end of life (cancel or failure) has not landed yet; the timer looks at each every tick.
ENDING_PREFIX = "ending/"
# jobs/<job_id>/<run_id>: which run made a fine-tune, for retention (the service may not keep our job name,
# service-contract.md#C2); written before the run records the job, removed with the job.
JOBS_PREFIX = "jobs/"
# suffixes/<suffix>/<run_id>/<attempt>: which run sent a deployment suffix, for the audit (a deployment echoes no name
# of ours, only the suffix inside `deployed_model`); written before the create, removed with the deployment.
SUFFIXES_PREFIX = "suffixes/"
WAITING_PREFIX = "waiting/"  # waiting/<quota>/<since ms>-<run_id>: the line of runs waiting for a quota

# Stage markers: the entry that records a stage carries it in its key, so an OSS suffix filter can chain the
# next function on it.
REQUESTED_SUFFIX = "-requested.json"
FILE_READY_SUFFIX = "-file-ready.json"
JOB_SUCCEEDED_SUFFIX = "-job-succeeded.json"
BATCH_READY_SUFFIX = "-batch-ready.json"

# The three creation events; never `oss:ObjectCreated:*`, which fires once per uploaded part.
CREATED_EVENTS = (
    "oss:ObjectCreated:PutObject",
    "oss:ObjectCreated:PostObject",
    "oss:ObjectCreated:CompleteMultipartUpload",
)

# function -> the OSS trigger filters it needs. on_upload also takes `requested` entries: a run started through the
# REST API, or re-announced by the timer, is driven by that entry's event rather than a dataset upload's. Only the
# webhook and the timer write `requested`, so no function's own writes ever trigger it again: nothing loops.
OSS_TRIGGERS: dict[str, list[OssFilter]] = {
    "on_upload": [
        {"prefix": DATASETS_PREFIX, "suffix": DATASET_SUFFIX},
        {"prefix": DATASETS_PREFIX, "suffix": ZIP_SUFFIX},
        {"prefix": BATCHES_PREFIX, "suffix": DATASET_SUFFIX},
        {"prefix": RUNS_PREFIX, "suffix": REQUESTED_SUFFIX},
        # A batch run's pending work, handed over by the timer or a callback (never written by on_upload).
        {"prefix": RUNS_PREFIX, "suffix": BATCH_READY_SUFFIX},
        {"prefix": IMPORTS_PREFIX, "suffix": IMPORT_SUFFIX},
        {"prefix": DEPLOYMENTS_PREFIX, "suffix": DEPLOY_SUFFIX},
    ],
    "on_file_ready": [{"prefix": RUNS_PREFIX, "suffix": FILE_READY_SUFFIX}],
    "on_success": [{"prefix": RUNS_PREFIX, "suffix": JOB_SUCCEEDED_SUFFIX}],
}
