"""Deleting what a run made on Bailian: its files, its fine-tune job, its deployment.

Every helper is idempotent: a resource already gone (404) counts as deleted, so a duplicate delivery, a retry
after a crash, or two handlers cleaning the same run change nothing. Cancel, completion, job retention
(`delivery/retention.py`),
teardown, the deployment TTL and compensation (an actor whose create lost the commit that would have recorded
it, `transitions.record`) all delete through these, and none of them ever touches the dataset in OSS.
`made_by`/`sweep` find everything of a run by the deterministic names of `reconcile` (every attempt and every
claim's generation), for cancel, which must also reach what no entry records.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bailian_flow.client.errors import APIStatusError, BadRequestError, BailianError, NotFoundError
from bailian_flow.pipeline.protocol import reconcile
from bailian_flow.pipeline.protocol.kinds import all_specs, owner_of_resource, spec_of
from bailian_flow.pipeline.protocol.layout import JOBS_PREFIX, SUFFIXES_PREFIX
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.runlog import is_run_id

if TYPE_CHECKING:
    from bailian_flow.client.models import FineTuneJob

log = logging.getLogger("bailian_flow.pipeline")

# `reconcile.job_name`: what marks a job as the pipeline's, and which run made it.
_OUR_JOB = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_-]+)-(?P<attempt>\d+)(?:-g\d+)?$")


def run_files(state: RunState) -> list[str]:
    """The Bailian files this run uploaded itself (a file id the user gave is theirs to keep)."""
    if state.source.key is None:
        return []
    return [file_id for file_id in (state.file_id, state.validation_file_id) if file_id]


async def delete_file(flow: Flow, file_id: str) -> None:
    with contextlib.suppress(NotFoundError):
        await flow.client.files.delete(file_id)


async def delete_run_files(flow: Flow, state: RunState) -> list[str]:
    """Delete the run's training and validation files; returns the ids now gone."""
    gone = []
    for file_id in run_files(state):
        await delete_file(flow, file_id)
        gone.append(file_id)
    return gone


async def delete_job(flow: Flow, job_id: str) -> bool:
    """Delete a finished fine-tune job. False when Bailian refuses (the job has not ended)."""
    try:
        await flow.client.fine_tunes.delete(job_id)
    except NotFoundError:
        return True
    except BadRequestError as exc:
        log.info("fine-tune %s not deleted: %s", job_id, exc.code)
        return False
    await forget_job_owner(flow, job_id)
    return True


async def undeploy(flow: Flow, deployed_model: str) -> None:
    """Start deleting a deployment (it goes DELETING, then away); one already gone is fine."""
    with contextlib.suppress(NotFoundError):
        await flow.client.deployments.delete(deployed_model)
    suffix = _suffix_of(deployed_model)
    if suffix is not None:
        async for info in flow.store.list(f"{SUFFIXES_PREFIX}{suffix}/"):
            await flow.store.delete(info.key)


# A suffix Bailian takes (service-contract.md#C23): only such a one is ever noted, so a key never holds anything else.
_SUFFIX = re.compile(r"[a-z0-9]{1,8}")


def _suffix_of(deployed_model: str) -> str | None:
    """The suffix a deployed model ends with (`<model>-…-<suffix>`), if it is one Bailian takes."""
    suffix = deployed_model.rpartition("-")[2]
    return suffix if _SUFFIX.fullmatch(suffix) else None


async def note_deployment_owner(flow: Flow, suffix: str, run_id: str, attempt: int) -> None:
    """Remember which run and attempt sends `suffix`, before the create: the deployment object names no run (its
    `deployed_model` ends with the suffix, a hash of run and attempt or a marker's own), so the audit asks here."""
    if _SUFFIX.fullmatch(suffix):
        key = f"{SUFFIXES_PREFIX}{suffix}/{run_id}/{attempt}"
        await flow.store.put(key, b"", forbid_overwrite=True, content_type="text/plain")


async def deployment_owner(flow: Flow, deployed_model: str) -> tuple[str, int] | None:
    """The run (and its newest attempt) that noted the deployment's suffix; None when no run or several did (a
    marker's own suffix reused by another run: which one made this deployment is not known, so it is left)."""
    suffix = _suffix_of(deployed_model)
    if suffix is None:
        return None
    notes: dict[str, int] = {}
    async for info in flow.store.list(f"{SUFFIXES_PREFIX}{suffix}/"):
        run_id, _, attempt = info.key[len(SUFFIXES_PREFIX) + len(suffix) + 1 :].partition("/")
        if is_run_id(run_id) and attempt.isdigit():
            notes[run_id] = max(notes.get(run_id, 0), int(attempt))
    return next(iter(notes.items())) if len(notes) == 1 else None


def _owner_by_name(job_name: str | None) -> str | None:
    match = _OUR_JOB.match(job_name or "")
    return match["run_id"] if match and is_run_id(match["run_id"]) else None


# How an undo that found nothing to undo ends its phrase (the audit writes no history for it).
ALREADY_GONE = "was already gone"


def job_owner_key(job_id: str, run_id: str) -> str:
    return f"{JOBS_PREFIX}{job_id}/{run_id}"


async def note_job_owner(flow: Flow, job_id: str, run_id: str) -> None:
    """Remember which run made a fine-tune, before the run records it (service-contract.md#C2)."""
    await flow.store.put(job_owner_key(job_id, run_id), b"", content_type="text/plain")


async def forget_job_owner(flow: Flow, job_id: str) -> None:
    """Drop the note of a job that is gone (whoever deleted it: retention, compensation, a sweep)."""
    async for info in flow.store.list(f"{JOBS_PREFIX}{job_id}/"):
        await flow.store.delete(info.key)


async def job_owners(flow: Flow) -> dict[str, str]:
    """job id -> the run that made it, from one listing of `jobs/`."""
    owners: dict[str, str] = {}
    async for info in flow.store.list(JOBS_PREFIX):
        job_id, _, run_id = info.key[len(JOBS_PREFIX) :].partition("/")
        if job_id and is_run_id(run_id):
            owners[job_id] = run_id
    return owners


def owner_of_job(job: FineTuneJob, owners: Mapping[str, str]) -> str | None:
    """The run id a pipeline job belongs to: what the run noted when it made it, else the name it kept (a hint the
    service may drop, service-contract.md#C2); None for anyone else's job."""
    return owners.get(job.job_id) or (_owner_by_name(job.job_name) if job.name_kept() else None)


# -- undoing by name: compensation and cancel ------------------------------------------------------------------------

# A resource kind: the protocol's own below; a run kind adds its own (`KindSpec.resources`), found and undone by
# its `find` and `undo` hooks.
Kind = str
PROTOCOL_RESOURCES: tuple[Kind, ...] = ("file", "job", "deployment", "import")
_NOUN: dict[str, str] = {"file": "file", "job": "fine-tune", "deployment": "deployment", "import": "import"}


def whole_run_resources() -> frozenset[Kind]:
    """Resource kinds swept only when the whole run goes, never for one act's result (`KindSpec`)."""
    return frozenset().union(*(spec.whole_run_resources for spec in all_specs()))


@dataclass(frozen=True)
class Made:
    """One Bailian resource a run made (or may have made)."""

    kind: Kind
    id: str

    def __str__(self) -> str:
        return f"{_NOUN.get(self.kind, self.kind.replace('-', ' '))} {self.id}"

    def recorded_in(self, state: RunState) -> bool:
        """Whether the run's state follows this very resource (then it is the run's, not a duplicate)."""
        return state.owns(self.kind, self.id)


async def undo(flow: Flow, made: Made) -> str:
    """Cancel (a fine-tune) or delete (anything else) `made`; what was done, as a phrase for the history.

    Bailian's 5xx escape (a compensating actor's caller retries); a refusal for now is said in the phrase."""
    phrase, _ = await _undo(flow, made)
    return phrase


async def try_undo(flow: Flow, made: Made) -> tuple[str, bool]:
    """`undo` for an end of life: (phrase, done). Not done: refused for now (an import still running, a job not
    ended yet) or a call that failed after its retries; the caller keeps the run ending and tries again."""
    try:
        return await _undo(flow, made)
    except BailianError as exc:
        log.info("undo of %s failed: %s", made, exc)
        return f"{made} not undone yet ({type(exc).__name__})", False


async def _undo(flow: Flow, made: Made) -> tuple[str, bool]:
    owner = owner_of_resource(made.kind)
    try:
        if owner is not None:
            phrase: str = await owner.required("undo")(flow, made)
            return phrase, True
        if made.kind == "job":
            try:
                await flow.client.fine_tunes.cancel(made.id)
            except BadRequestError:
                # It ended already (a job only ended jobs may be deleted): a finished model nobody records goes.
                if await delete_job(flow, made.id):
                    return f"deleted {made}", True
                return f"{made} not undone yet (neither cancelable nor deletable now)", False
            return f"canceled {made}", True
        if made.kind == "file":
            await delete_file(flow, made.id)
        elif made.kind == "deployment":
            await undeploy(flow, made.id)
        else:
            await flow.client.custom_models.delete(made.id)
    except NotFoundError:
        return f"{made} {ALREADY_GONE}", True
    except APIStatusError as exc:
        if exc.status is not None and exc.status >= 500:
            raise
        # An import still running cannot be deleted yet (OperationDenied), a deployment may have to finish
        # starting first: never "done", the end of life tries again until it lands.
        log.info("undo of %s refused: %s %s", made, exc.status, exc.code)
        return f"{made} not undone yet ({exc.code})", False
    return f"deleted {made}", True


async def made_by(
    flow: Flow, state: RunState, kinds: Collection[Kind] = ("file", "job", "deployment", "import")
) -> list[Made]:
    """Every resource of this run on Bailian, found by name (every attempt, every generation) or by its record.

    A file given by the user (`source.file_id`) is theirs, never the run's: only files the run uploaded (known
    by their description) are listed.
    """
    found: list[Made] = []
    if "file" in kinds:
        found += [Made("file", info.file_id) for info in await reconcile.files_of_run(flow, state.run_id)]
        # Lists lag creates: the files the run records go by their ids, listed yet or not.
        found += [Made("file", file_id) for file_id in run_files(state) if file_id not in state.files_deleted]
    if "job" in kinds:
        jobs = await reconcile.jobs_of_run(flow, state)
        # A failed or canceled job costs nothing more; a running one is canceled, a succeeded one deleted. The
        # recorded one is included even when a lagging list hides it.
        found += [Made("job", job.job_id) for job in jobs if job.status not in ("FAILED", "CANCELED", "CANCELING")]
        if state.job_id and state.job_id not in {job.job_id for job in jobs}:
            found.append(Made("job", state.job_id))
    if "deployment" in kinds:
        deployments = await reconcile.deployments_of_run(flow, state.run_id, state.attempt)
        found += [Made("deployment", item.deployed_model) for item in deployments]
        if state.deployed_model and state.deployed_model not in {item.deployed_model for item in deployments}:
            found.append(Made("deployment", state.deployed_model))
    if "import" in kinds:
        found += [Made("import", job.job_id) for job in await reconcile.imports_of_run(flow, state.run_id)]
        if state.import_job_id:
            found.append(Made("import", state.import_job_id))
    for spec in all_specs():
        own = set(spec.resources) & set(kinds)
        if own:
            found += await spec.required("find")(flow, state, own)
    return list(dict.fromkeys(found))


async def sweep(
    flow: Flow,
    state: RunState,
    *,
    keep: Collection[Made] = (),
    kinds: Collection[Kind] = ("file", "job", "deployment", "import"),
) -> list[str]:
    """Undo every resource of the run except `keep`; what was done, one phrase per resource.

    Fine-tunes go first: a file still in use by a running job is not deleted from under it.
    """
    order = _sweep_order()
    targets = sorted(
        (made for made in await made_by(flow, state, kinds) if made not in keep), key=lambda m: order[m.kind]
    )
    return [await undo(flow, made) for made in targets]


# -- the end of life: everything a run made goes, but what it keeps on purpose -----------------------------------


def kept(state: RunState) -> list[Made]:
    """What a run keeps on Bailian on purpose once it ends: a DONE run its deployment (until torn down or expired),
    its job (until job retention deletes it) and its imported model; a FAILED run its succeeded fine-tune, which a
    retry deploys without training again. Everything else a terminal run made is undone."""
    keep: list[Made] = []
    finished_job = state.stage == "done" or (state.stage in ("failed", "cleaning-up") and state.finetuned_output)
    if finished_job and state.job_id and not state.job_deleted:
        keep.append(Made("job", state.job_id))
    if state.stage == "done" and state.deployed_model and not state.undeployed_at:
        keep.append(Made("deployment", state.deployed_model))
    if state.stage == "done" and state.import_job_id:
        keep.append(Made("import", state.import_job_id))  # the imported model is what is (or was) deployed
    return keep


@dataclass
class Swept:
    """One try of a run's end of life: what was done (phrases), what was undone, and whether anything is left."""

    acts: list[str]
    undone: list[Made]
    pending: bool


async def undo_all(
    flow: Flow, state: RunState, *, keep: Collection[Made] = (), kinds: tuple[Kind, ...] = PROTOCOL_RESOURCES
) -> Swept:
    """Stop and undo everything the run made, by its records and by name, except `keep`; never raises for
    Bailian's sake: what could not be undone now makes the result `pending`, for the next try."""
    acts: list[str] = []
    pending = False
    # The run's kind first stops what its own records name, and says which of its resources to find by name.
    stop = spec_of(state.kind).hook("stop")
    if stop is not None:
        try:
            kinds = await stop(flow, state, kinds)
        except BailianError as exc:
            acts.append(f"stopping what the run records failed ({type(exc).__name__})")
            pending = True
            kinds = (*kinds, *spec_of(state.kind).resources)
    try:
        found = await made_by(flow, state, kinds)
    except BailianError as exc:
        acts.append(f"listing what the run made failed ({type(exc).__name__})")
        return Swept(acts, [], True)
    order = _sweep_order()
    undone: list[Made] = []
    recorded_job = Made("job", state.job_id) if state.job_id and "job" in kinds else None
    if recorded_job is not None and recorded_job not in found and recorded_job not in keep:
        # `made_by` leaves out a job listed as ended (canceled, canceling, failed): an earlier try may have
        # canceled it without living to record that, so it counts as undone, or the run would name it forever.
        undone.append(recorded_job)
    for made in sorted((m for m in found if m not in keep), key=lambda m: order[m.kind]):
        phrase, done = await try_undo(flow, made)
        acts.append(phrase)
        if done:
            undone.append(made)
        pending = pending or not done
    return Swept(acts, undone, pending)


def _sweep_order() -> dict[str, int]:
    order = {"job": 0, "import": 1, "deployment": 2, "file": 3}
    for spec in all_specs():
        order.update(spec.resources)
    return order
