"""The batch kind: an input under the batches prefix → planned shards → Bailian batches → answers merged in input
order (`stages.py`)."""

from __future__ import annotations

from bailian_flow.pipeline.protocol.kinds import KindSpec, Opener, Quota

SPEC = KindSpec(
    name="batch",
    uses=frozenset({"batch"}),
    facts={
        "received": "kinds.batch.stages:step_batch_received",
        "requested": "kinds.batch.stages:step_batch_received",
        "batch-running": "kinds.batch.stages:poll_batch_run",
        "batch-ready": "kinds.batch.stages:step_batch_ready",
    },
    acts={
        "batch-planning": "kinds.batch.stages:resume_planning",
        "batch-submitting": "kinds.batch.stages:resume_submitting",
        "batch-collecting": "kinds.batch.stages:resume_collecting",
        "batch-merging": "kinds.batch.stages:resume_merging",
    },
    handled_by={
        # Planning, and the work the timer hands over through `batch-ready`.
        "on_upload": frozenset(
            {
                "received",
                "requested",
                "batch-planning",
                "batch-ready",
                "batch-submitting",
                "batch-collecting",
                "batch-merging",
            }
        ),
    },
    # A batch run follows its shards in flight (`BatchRunState.followed`), all from the list of batches.
    polled=frozenset({"batch-running"}),
    reannounce={
        "received": "requested",
        "requested": "requested",
        "batch-planning": "requested",
        "batch-ready": "batch-ready",
        "batch-submitting": "batch-ready",
        "batch-collecting": "batch-ready",
        "batch-merging": "batch-ready",
    },
    triggering=frozenset({"requested", "batch-ready"}),
    state_model="kinds.batch.batch_state:BatchRunState",
    resources={"batch": 0, "batch-file": 3},
    # Found for every shard at once: never swept for one shard's result (a re-claim of the shard adopts what an
    # earlier claim made by its tag instead), only when the whole run goes.
    whole_run_resources=frozenset({"batch", "batch-file"}),
    audits={"batch": "kinds.batch.resources:audit_batches", "batch-file": "kinds.batch.resources:audit_files"},
    openers=(Opener(prefix_setting="batches_prefix", suffix=".jsonl", open="protocol.intake:open_run_for_object"),),
    quotas={"batches": Quota(counter="kinds.batch.quota:count_batches", family="batch")},
    hooks={
        "stop": "kinds.batch.acts:stop_batches",
        "find": "kinds.batch.resources:find",
        "undo": "kinds.batch.resources:undo",
        "requests_fit": "kinds.batch.stages:waiting_requests_fit",
        "request_settings": "kinds.batch.intake:request_settings",
        "settings_for": "kinds.batch.intake:settings_update",
        "agrees": "kinds.batch.intake:agrees",
        "shown": "kinds.batch.shown:facts",
        "retry_keeping": "kinds.batch.intake:retry_keeping",
    },
)
