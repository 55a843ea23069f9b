"""The backstop: what Bailian still holds for runs that have ended.

Every end of life undoes what its run made (`transitions.end_of_life`), yet a resource can outlive it: a create
that landed after the end (its actor past every lease), a list that lagged longer than expected, a person's retry
of a create by hand. So the timer reads one slice of one list per audit (a page, families in turn, a cursor in its
hint), names each resource's run from what the service echoes (file names, the note a run writes when it makes a
job or the job's name where the service kept it, import display names, and each kind's own, e.g. batch shard
tags), and undoes what belongs to a terminal run, except what that run keeps on purpose (`cleanup.kept`: a DONE
run's deployment and kept job). Each undo is written into the owning run's history. A resource of a newer attempt
than the run's newest entry (a retry racing the audit) and a name whose run does not exist (another installation
sharing the account) are left alone.

A deployment echoes no name of ours, only its suffix inside `deployed_model` (a hash of run and attempt, or a
marker's own): the run notes the suffix before its create (`cleanup.note_deployment_owner`), and the audit reads
that note.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from bailian_flow.pipeline.protocol import cleanup, kinds
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.transitions import Current, load, note
from bailian_flow.runlog import is_run_id

log = logging.getLogger("bailian_flow.pipeline")

AUDIT_PAGE = 50
# One resource found by name: what it is, the run its name says, the attempt it was made in.
Found = tuple[Made, str, int]
# An auditor reads one slice at `cursor` (None: the start): what it found, and where the next slice starts (None:
# the list is through).
Auditor = Callable[[Flow, str | None], Awaitable[tuple[list[Found], str | None]]]

_NAMED = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_-]+?)-(?P<attempt>\d+)(?:-g\d+)?$")
_FILE_NAMED = re.compile(r"^bf-(?P<run_id>[A-Za-z0-9_]+)-(?P<attempt>\d+)-[a-z]+(?:-g\d+)?\.(?:jsonl|zip)$")
_DESCRIBED = re.compile(r"^bailian-flow run=(?P<run_id>\S+) attempt=(?P<attempt>\d+) ")
_ENDED_JOBS = ("FAILED", "CANCELED", "CANCELING")


def _named(name: str | None) -> tuple[str, int] | None:
    match = _NAMED.match(name or "")
    return (match["run_id"], int(match["attempt"])) if match and is_run_id(match["run_id"]) else None


def _next_page(page_no: int, total: int) -> str | None:
    return str(page_no + 1) if page_no * AUDIT_PAGE < total else None


async def _jobs(flow: Flow, cursor: str | None) -> tuple[list[Found], str | None]:
    page_no = int(cursor or 1)
    page = await flow.client.fine_tunes.list_page(page_no, AUDIT_PAGE)
    live = [job for job in page.jobs if job.status not in _ENDED_JOBS]
    # The run a job belongs to: the note its run wrote when it made it, else the name when the service kept it
    # (service-contract.md#C2). A note knows no attempt: a retry commits before it makes a job, so a run found
    # terminal here made the job in an earlier attempt (0 stands for "not newer").
    owners = await cleanup.job_owners(flow) if live else {}
    found: list[Found] = []
    for job in live:
        named = _named(job.job_name) if job.name_kept() else None
        if named is not None:
            found.append((Made("job", job.job_id), *named))
        elif job.job_id in owners:
            found.append((Made("job", job.job_id), owners[job.job_id], 0))
    return found, _next_page(page_no, page.total)


async def _imports(flow: Flow, cursor: str | None) -> tuple[list[Found], str | None]:
    page_no = int(cursor or 1)
    page = await flow.client.custom_models.list_page(page_no, AUDIT_PAGE)
    found = [(Made("import", job.job_id), *named) for job in page.list_ if (named := _named(job.display_name))]
    return found, _next_page(page_no, page.total)


async def _files(flow: Flow, cursor: str | None) -> tuple[list[Found], str | None]:
    page_no = int(cursor or 1)
    page = await flow.client.files.list_page(page_no, AUDIT_PAGE)
    found: list[Found] = []
    for info in page.files:
        # The file's name (`reconcile.file_name`, echoed by the list), or its description where the list shows it.
        match = _FILE_NAMED.match(info.name or "") or _DESCRIBED.match(info.description or "")
        if match and is_run_id(match["run_id"]):
            found.append((Made("file", info.file_id), match["run_id"], int(match["attempt"])))
    return found, _next_page(page_no, page.total)


async def _deployments(flow: Flow, cursor: str | None) -> tuple[list[Found], str | None]:
    page_no = int(cursor or 1)
    page = await flow.client.deployments.list_page(page_no, AUDIT_PAGE)
    found: list[Found] = []
    for item in page.deployments:
        # The run that noted the suffix before its create (the deployment echoes no name of ours). One going away
        # already needs nothing.
        owner = await cleanup.deployment_owner(flow, item.deployed_model) if item.status != "DELETING" else None
        if owner is not None:
            found.append((Made("deployment", item.deployed_model), *owner))
    return found, _next_page(page_no, page.total)


_OWN: dict[str, Auditor] = {"job": _jobs, "import": _imports, "file": _files, "deployment": _deployments}


def families() -> list[str]:
    """The protocol's own families, then each kind's (`KindSpec.audits`), in a fixed order."""
    return [*_OWN, *(family for spec in kinds.all_specs() for family in spec.audits)]


def auditor(family: str) -> Auditor:
    """A family's auditor; a kind's is imported only when its turn comes (cold start)."""
    if family in _OWN:
        return _OWN[family]
    for spec in kinds.all_specs():
        if family in spec.audits:
            found: Auditor = kinds.named(spec.audits[family])
            return found
    raise KeyError(family)


def _position(cursor: str | None, families: list[str]) -> tuple[str, str | None]:
    family, _, within = (cursor or "").partition(":")
    if family not in families:
        return families[0], None
    return family, within or None


async def audit(flow: Flow, cursor: str | None, active: set[str]) -> tuple[list[str], str]:
    """Audit one slice at `cursor` ("family:position"); what was undone (phrases) and the next cursor."""
    order = families()
    family, within = _position(cursor, order)
    found, following = await auditor(family)(flow, within)
    # A family read through hands the next audit to the next family, from its beginning.
    after = order[(order.index(family) + 1) % len(order)]
    next_cursor = f"{after}:" if following is None else f"{family}:{following}"
    done: list[str] = []
    runs: dict[str, Current | None] = {}
    for made, run_id, attempt in found:
        if run_id in active:
            continue  # a live run's own end of life, or its compensation, answers for it
        if run_id not in runs:
            runs[run_id] = await load(flow, run_id)
        current = runs[run_id]
        if current is None:
            log.info("audit: %s names run %s, which does not exist here; left alone", made, run_id)
            continue
        state = current.state
        if not state.terminal or attempt > state.attempt or made in cleanup.kept(state):
            continue
        phrase, _ = await cleanup.try_undo(flow, made)
        if phrase.endswith(cleanup.ALREADY_GONE):
            continue  # e.g. the answer files of a batch Bailian still lists: nothing happened, nothing to note
        stage = state.public()["stage"]
        await note(flow, run_id, f"audit: {phrase} (found by name; the run is {stage})")
        done.append(f"{run_id}: {phrase}")
    return done, next_cursor
