"""A run's state: what the newest entry of its log holds, whole.

Stages come in two kinds. An *intent* (`uploading`, `starting-job`, `importing`, `deploying`) is written before a
side effect on Bailian, carrying the deterministic name the resource will have; only the delivery that won that
sequence number acts. A *fact* records what exists (`file-ready`, `training`, ...). A delivery that finds a stale
intent looks the resource up by that name before acting again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bailian_flow.pipeline.protocol.settings import RunSettings

# A stage is a name; the protocol's own are below, a kind's are in its spec (`protocol/kinds.py`). Intents (a side
# effect about to happen) and polled stages are the union of the kinds' (`kinds.intents()`, `kinds.polled()`).
Stage = str

TERMINAL: frozenset[str] = frozenset({"done", "failed", "canceled"})

# What a run does (a key of `kinds.REGISTERED`); every kind shares the run log, the transitions and the exactly-once
# rules.
RunKind = str

# Names the REST API and notifications use for the terminal stages.
PUBLIC_STAGE = {"done": "DONE", "failed": "FAILED", "canceled": "CANCELED"}


class Source(BaseModel):
    """Where the training data came from: an OSS object, or a file already registered with Bailian."""

    model_config = ConfigDict(extra="forbid")

    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    size: int | None = None
    file_id: str | None = None


class RunError(BaseModel):
    """Why a run failed, precisely enough for a person to fix the input."""

    reason: str
    object: str | None = None
    line: int | None = None
    field: str | None = None
    code: str | None = None
    retryable: bool = False
    # Every problem found in the dataset (up to the validator's cap), the first of which is described above.
    errors: list[dict[str, Any]] = Field(default_factory=list)


class Waiting(BaseModel):
    """Why a run is in `waiting`: an account quota is full. Quota is never a reason to fail a run.

    `since` orders the line (first come, first served) and survives a run that is admitted and then meets a full
    quota again (it keeps its place); `redo` is the stage the timer re-announces when the run is admitted.
    """

    quota: str
    used: int | None = None
    limit: int | None = None
    since: str
    redo: Stage
    # What the run will take of a size quota (the dataset's bytes for `files`).
    needs_bytes: int | None = None
    # Requests per model a batch run's next shard would add, when other runs' pending requests (not the slots)
    # hold it back: the timer admits it once they fit, rather than at every free slot only to see it wait again.
    needs_requests: dict[str, int] | None = None
    admitted_at: str | None = None


class RunState(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    kind: RunKind = "fine-tune"
    # The sequence number of the log entry holding this state (set when the entry is written or read).
    seq: int = 0
    stage: Stage
    attempt: int = 1
    source: Source
    settings: RunSettings = Field(default_factory=RunSettings)
    created_at: str
    file_id: str | None = None
    validation_file_id: str | None = None
    records: int | None = None
    # Finding the run's fine-tunes by the files they train on (service-contract.md#C2, #C3): the training files of
    # earlier attempts; jobs made from the user's own file before the run claimed it (never the run's); jobs of
    # earlier attempts made from the file this attempt trains on again (not this attempt's).
    earlier_file_ids: list[str] = Field(default_factory=list)
    foreign_jobs: list[str] = Field(default_factory=list)
    earlier_jobs: list[str] = Field(default_factory=list)
    job_name: str | None = None
    job_id: str | None = None
    job_status: str | None = None
    finetuned_output: str | None = None
    import_name: str | None = None
    import_job_id: str | None = None
    imported_model: str | None = None
    deploy_suffix: str | None = None
    deployed_model: str | None = None
    deployment_status: str | None = None
    # Cleanup and the delivery's end of life (pipeline/cleanup.py, pipeline/lifecycle.py).
    files_deleted: list[str] = Field(default_factory=list)
    job_deleted: bool = False
    deployment_expires_at: str | None = None
    undeployed_at: str | None = None
    error: RunError | None = None
    waiting: Waiting | None = None
    warnings: list[str] = Field(default_factory=list)
    # Before the job: records, Qwen tokens, epochs and cost (bailian_flow.estimate); after it: what Bailian billed.
    estimate: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    # How often each intent was claimed in this attempt: above one, the resource may exist already.
    claims: dict[str, int] = Field(default_factory=dict)
    # How often the timer re-announced a stage whose event went unanswered.
    redrives: int = 0
    # What the run's end of life undid ("kind:id"), so that `owned` tells what it still holds.
    undone: list[str] = Field(default_factory=list)
    # When the act in flight at a cancel claimed its intent: the cancel's end waits out that act's lease.
    act_since: str | None = None
    # The intent's actor knows its act did not happen (a definite refusal): the next delivery need not wait a lease.
    released: bool = False

    @property
    def terminal(self) -> bool:
        return self.stage in TERMINAL

    def intent_subject(self) -> int | None:
        """What the current intent is about beyond its stage (a kind whose intents recur, e.g. per batch shard)."""
        return None

    def followed(self) -> dict[str, str]:
        """Resources a polled stage follows beyond `KindSpec.follows` ("family:id" -> the status recorded)."""
        return {}

    def owns(self, resource: str, resource_id: str) -> bool:
        """Whether this state follows that very resource (then it is the run's, not a duplicate to undo)."""
        if resource == "file":
            return resource_id in (self.file_id, self.validation_file_id)
        if resource == "job":
            return resource_id == self.job_id
        if resource == "deployment":
            return resource_id == self.deployed_model
        if resource == "import":
            return resource_id == self.import_job_id
        return False

    def recorded(self) -> list[tuple[str, str]]:
        """(resource kind, id) of every Bailian resource the state records as the run's."""
        found: list[tuple[str, str]] = []
        if self.source.key is not None:
            found += [("file", file_id) for file_id in (self.file_id, self.validation_file_id) if file_id]
        if self.job_id:
            found.append(("job", self.job_id))
        if self.import_job_id:
            found.append(("import", self.import_job_id))
        if self.deployed_model:
            found.append(("deployment", self.deployed_model))
        return found

    def owned(self) -> list[str]:
        """What the run still holds on Bailian as far as its records tell ("kind:id"): recorded and not undone."""
        gone = set(self.undone) | {f"file:{file_id}" for file_id in self.files_deleted}
        if self.job_deleted and self.job_id:
            gone.add(f"job:{self.job_id}")
        if self.undeployed_at and self.deployed_model:
            gone.add(f"deployment:{self.deployed_model}")
        named = (f"{kind}:{resource_id}" for kind, resource_id in self.recorded())
        return [item for item in dict.fromkeys(named) if item not in gone]

    def public(self) -> dict[str, Any]:
        """The state as the REST API and notifications show it (terminal stages upper-cased)."""
        data = self.model_dump(mode="json")
        data["stage"] = PUBLIC_STAGE.get(self.stage, self.stage)
        return data
