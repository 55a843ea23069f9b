"""Whether the service keeps what the pipeline finds its resources by: job names (service-contract.md#C2) and
file descriptions in the file list (#C18)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bailian_flow.client import errors

from ._account import Account
from ._report import HOLDS, UNKNOWN, VIOLATED, Report

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient
    from bailian_flow.client.models.files import FileInfo
    from bailian_flow.client.models.fine_tunes import FineTuneJob

__all__ = ["descriptions_listed", "names_kept"]

# The pipeline's job names (pipeline/protocol/reconcile.job_name) and its file descriptions (file_description).
PIPELINE_JOB_NAME = re.compile(r"^bf-.+-\d+(-g\d+)?$")
PIPELINE_DESCRIPTION = "bailian-flow run="
PIPELINE_FILE_NAME = "bf-"
# Files looked up one by one (a job's training file, a description the list may drop): bounded, 10 QPS.
MAX_FILE_GETS = 20


async def _file_info(client: BailianClient, account: Account, file_id: str, budget: list[int]) -> FileInfo | None:
    """The file as the list showed it, or (within the budget of single reads) as `GET /files/{id}` shows it."""
    listed = next((info for info in account.files or [] if info.file_id == file_id), None)
    if listed is not None and listed.description is not None:
        return listed
    if budget[0] <= 0:
        return listed
    budget[0] -= 1
    try:
        return await client.files.get(file_id)
    except errors.BailianError:
        return listed


def _pipeline_file(info: FileInfo | None) -> bool:
    if info is None:
        return False
    return (info.description or "").startswith(PIPELINE_DESCRIPTION) or (info.name or "").startswith(PIPELINE_FILE_NAME)


async def names_kept(client: BailianClient, report: Report, account: Account) -> None:
    """service-contract.md#C2: a pipeline job is one named `bf-<run>-<attempt>[-g<n>]`, or one training on a file
    the pipeline uploaded (its description `bailian-flow run=...`, or a `bf-` name)."""
    if account.jobs is None:
        report.add("C2", "job names kept", UNKNOWN, f"list failed: {account.failures.get('fine-tunes')}")
        return
    kept = [job for job in account.jobs if job.name_kept() and PIPELINE_JOB_NAME.match(job.job_name or "")]
    lost: list[FineTuneJob] = []
    budget = [MAX_FILE_GETS]
    for job in account.jobs:
        if job.name_kept() or not job.training_file_ids or budget[0] <= 0:
            continue
        if _pipeline_file(await _file_info(client, account, job.training_file_ids[0], budget)):
            lost.append(job)
    if lost:
        example = lost[0]
        report.add(
            "C2",
            "job names kept",
            VIOLATED,
            f"{len(lost)} pipeline job(s) answer their id as name (e.g. {example.job_id}, training on "
            f"{example.training_file_ids[0]}); {len(kept)} kept a bf- name: find jobs by training_file_ids",
        )
    elif kept:
        report.add(
            "C2", "job names kept", HOLDS, f"{len(kept)} pipeline job(s) kept their bf- names (e.g. {kept[0].job_name})"
        )
    else:
        others = sum(1 for job in account.jobs if job.name_kept())
        report.add(
            "C2",
            "job names kept",
            UNKNOWN,
            f"no job of this pipeline found among {len(account.jobs)}; {others} other(s) keep a name",
        )


async def descriptions_listed(client: BailianClient, report: Report, account: Account) -> None:
    """service-contract.md#C18: whether `GET /files` echoes `description` (a single read is compared)."""
    if not account.files:
        report.add(
            "C18", "file list echoes descriptions", UNKNOWN, "no file stored: nothing to compare (--probe uploads one)"
        )
        return
    if any(info.description for info in account.files):
        report.add("C18", "file list echoes descriptions", HOLDS, "listed files carry their description")
        return
    for info in account.files[:3]:
        try:
            single = await client.files.get(info.file_id)
        except errors.BailianError:
            continue
        if single.description:
            report.add(
                "C18",
                "file list echoes descriptions",
                VIOLATED,
                f"GET /files/{info.file_id} shows a description the list leaves out: find files by name",
            )
            return
    report.add("C18", "file list echoes descriptions", UNKNOWN, "no listed file has a description to compare")
