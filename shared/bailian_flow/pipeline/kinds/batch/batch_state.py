"""What a batch run holds in its state: the settings, the shard plan and each shard's progress.

A shard is one Bailian file and one batch: the lines of one model between two byte offsets of the input
(a mixed-model input interleaves shards). A resubmission is a new shard over the same range, of a later
generation, that leaves out the lines an earlier generation of the same root finished.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from bailian_flow.pipeline.kinds.batch.batch_settings import BatchSettings
from bailian_flow.pipeline.protocol.state import RunState

# `planned` (not submitted yet), then Bailian's own statuses; `part_key` is set once its answers are in the bucket.
ShardStatus = str
FINISHED_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
IN_FLIGHT_STATUSES = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
# In flight and not being stopped: what holds pending requests, and what a sweep cancels.
RUNNING_STATUSES = IN_FLIGHT_STATUSES - {"cancelling"}


class Shard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    root: int  # the first-generation shard this one resubmits (itself when generation 1)
    generation: int = 1
    model: str
    start: int  # byte offset of the shard's first line in the input
    end: int  # byte offset just past its last line
    first_line: int  # 1-based line number at `start`
    lines: int
    bytes: int
    status: ShardStatus = "planned"
    file_id: str | None = None
    batch_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    part_key: str | None = None
    # Its answers are the run's results themselves (`part_key` is output.jsonl): a run of one shard has no merge.
    direct: bool = False
    submitted_at: str | None = None
    finished_at: str | None = None


class BatchRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settings: BatchSettings = Field(default_factory=BatchSettings)
    total: int = 0
    shards: list[Shard] = Field(default_factory=list)
    # The shard the run's current intent is about.
    current: int | None = None
    # Why a planned shard is not submitted yet (a quota), shown while the run waits.
    waiting: str | None = None
    planned_at: str | None = None
    results_at: str | None = None

    def in_flight(self) -> list[Shard]:
        return [shard for shard in self.shards if shard.batch_id and shard.status not in FINISHED_STATUSES]


class BatchRunState(RunState):
    """A batch run's state: the run protocol's, plus its settings, shard plan and progress."""

    batch: BatchRun = Field(default_factory=BatchRun)

    def intent_subject(self) -> int | None:
        # Batch intents recur, one per shard: a result is recorded only on top of an intent about the same shard.
        return self.batch.current

    def followed(self) -> dict[str, str]:
        return {f"batch:{shard.batch_id}": shard.status for shard in self.batch.in_flight() if shard.batch_id}

    def recorded(self) -> list[tuple[str, str]]:
        # The merge deletes every shard file (`results_at`); a finished batch holds nothing that bills.
        found = super().recorded()
        for shard in self.batch.shards:
            if shard.batch_id and shard.status not in FINISHED_STATUSES:
                found.append(("batch", shard.batch_id))
            if self.batch.results_at is None:
                ids = (shard.file_id, shard.output_file_id, shard.error_file_id)
                found += [("batch-file", file_id) for file_id in ids if file_id]
        return found

    def owns(self, resource: str, resource_id: str) -> bool:
        if resource in ("batch-file", "batch"):
            return any(resource_id in (shard.file_id, shard.batch_id) for shard in self.batch.shards)
        return super().owns(resource, resource_id)


def plan_of(state: RunState) -> BatchRun:
    """The shard plan of a batch run's state."""
    assert isinstance(state, BatchRunState), f"run {state.run_id} is not a batch run"
    return state.batch


def shard_name(run_id: str, attempt: int, shard: Shard) -> str:
    """The tag a shard's Bailian file and batch carry, so a delivery that died mid-create finds them."""
    return shard_tag(run_id, attempt, root=shard.root, generation=shard.generation)


def shard_tag(run_id: str, attempt: int, *, root: int, generation: int) -> str:
    return f"bf-{run_id}-a{attempt}-s{root}-g{generation}"


_TAG = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_]+)-a\d+-s\d+-g\d+$")


def run_of_tag(tag: str | None) -> str | None:
    """The run a shard tag (`shard_name`) belongs to; None for a name that is not one."""
    match = _TAG.match(tag or "")
    return match["run_id"] if match else None
