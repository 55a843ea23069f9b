"""The read-only checks: access, regions, quota use, list page sizes, names and descriptions kept.

Nothing here writes to the account. Each check names its docs/service-contract.md row; a call that fails becomes
the evidence of its row ("unknown" or "violated"), never a traceback. Only the first call's failure stops the
doctor (`Unusable`): without access nothing else can be read.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bailian_flow.client import errors
from bailian_flow.client.models.batches import BatchStatus
from bailian_flow.client.models.deployments import DeploymentStatus
from bailian_flow.client.models.fine_tunes import FineTuneStatus

from ._report import HOLDS, UNKNOWN, VIOLATED, Report, Status
from ._uses import DEFAULT_PLAN_REGIONS, PLAN_REGIONS, TRAINING_REGIONS, Uses, regions_text

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient
    from bailian_flow.client.models.batches import Batch
    from bailian_flow.client.models.deployments import Deployment
    from bailian_flow.client.models.files import FileInfo
    from bailian_flow.client.models.fine_tunes import FineTuneJob

__all__ = ["Unusable", "read_only"]

T = TypeVar("T")

# The pipeline's job names (pipeline/protocol/reconcile.job_name) and its file descriptions (file_description).
PIPELINE_JOB_NAME = re.compile(r"^bf-.+-\d+(-g\d+)?$")
PIPELINE_DESCRIPTION = "bailian-flow run="
PIPELINE_FILE_NAME = "bf-"
# Files looked up one by one (a job's training file, a description the list may drop): bounded, 10 QPS.
MAX_FILE_GETS = 20
# The page sizes the pipeline asks (pipeline/protocol/bulk.PAGE_SIZES) and the largest documented anywhere.
DEPLOYMENT_PAGE_SIZES = (100, 200)
PAGE_SIZE = 100
BATCH_RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
GIB = 1 << 30


class Unusable(Exception):
    """The account cannot be read at all (key refused, host unreachable): one line, exit 4."""


@dataclass
class Account:
    """What the lists showed; None where a list failed (its row says why)."""

    files: list[FileInfo] | None = None
    jobs: list[FineTuneJob] | None = None
    deployments: list[Deployment] | None = None
    batches: list[Batch] | None = None
    failures: dict[str, str] = field(default_factory=dict)


def _said(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


async def _first_call(client: BailianClient) -> None:
    """One cheap authenticated read: a refused key or an unreachable host ends the doctor here."""
    try:
        await client.files.list_page(1, 1)
    except errors.AuthenticationError as exc:
        raise Unusable(
            f"the key is refused ({_said(exc)}): check DASHSCOPE_API_KEY (and DASHSCOPE_REGION: keys are per region)"
        ) from None
    except errors.PermissionDeniedError as exc:
        what = "the key or the workspace (DASHSCOPE_WORKSPACE)" if client.workspace else "the key"
        raise Unusable(f"{what} is refused ({_said(exc)})") from None
    except errors.APIConnectionError as exc:
        raise Unusable(
            f"cannot reach {client.endpoints.native} ({_said(exc)}): check DASHSCOPE_BASE_URL / network"
        ) from None
    except errors.APIStatusError as exc:
        raise Unusable(f"GET {client.endpoints.native}/files answered {_said(exc)}") from None


async def _collect(account: Account, name: str, read: Callable[[], Awaitable[list[T]]]) -> list[T] | None:
    try:
        return await read()
    except errors.BailianError as exc:
        account.failures[name] = _said(exc)
        return None


async def read_only(client: BailianClient, report: Report, uses: Uses) -> Account:
    await _first_call(client)
    report.add("C40", "key accepted, host reachable", HOLDS, f"GET {client.endpoints.native}/files answered 200")
    account = Account()
    account.files = await _collect(account, "files", lambda: _all(client.files.list(page_size=PAGE_SIZE)))
    account.jobs = await _collect(account, "fine-tunes", lambda: _all(client.fine_tunes.list(page_size=PAGE_SIZE)))
    account.deployments = await _collect(
        account, "deployments", lambda: _all(client.deployments.list(page_size=PAGE_SIZE))
    )
    account.batches = await _collect(account, "batches", lambda: _all(client.batches.list(limit=PAGE_SIZE)))
    _workspace(client, report, account)
    _compatible_host(client, report, account)
    await _regions(client, report, account, uses)
    _quotas(report, account, uses)
    await _page_sizes(client, report)
    await _names_kept(client, report, account)
    await _descriptions_listed(client, report, account)
    report.add(
        "C26",
        "a RUNNING deployment can be deleted",
        UNKNOWN,
        "not checked: it needs a deployment, which is billed; no stop operation is documented",
    )
    return account


async def _all(items: Any) -> list[Any]:
    return [item async for item in items]


def _workspace(client: BailianClient, report: Report, account: Account) -> None:
    echoed = [job.workspace_id for job in account.jobs or []]
    echoed += [deployment.workspace_id for deployment in account.deployments or []]
    seen = sorted({workspace for workspace in echoed if workspace})
    if not client.workspace:
        report.add(
            "C40",
            "workspace",
            HOLDS,
            f"DASHSCOPE_WORKSPACE unset: the default one; items show {', '.join(seen) or 'no workspace'}",
        )
        return
    others = [ws for ws in seen if ws != client.workspace]
    if others:
        report.add("C40", "workspace", VIOLATED, f"asked {client.workspace}, items answered from {', '.join(others)}")
    else:
        echoes = "every item echoes it" if seen else "no item echoes a workspace yet"
        report.add("C40", "workspace", HOLDS, f"{client.workspace} accepted; {echoes}")


def _compatible_host(client: BailianClient, report: Report, account: Account) -> None:
    where = f"{client.endpoints.compatible}/batches"
    if account.batches is not None:
        report.add("C31", "batches on the main host's compatible endpoint", HOLDS, f"GET {where} answered 200")
    else:
        report.add(
            "C31",
            "batches on the main host's compatible endpoint",
            VIOLATED,
            f"GET {where}: {account.failures['batches']}",
        )


async def _regions(client: BailianClient, report: Report, account: Account, uses: Uses) -> None:
    region = client.region
    listed = account.jobs is not None
    live = "GET /fine-tunes answered 200" if listed else f"GET /fine-tunes: {account.failures.get('fine-tunes')}"
    if region in TRAINING_REGIONS and listed:
        report.add("C13", "the region offers fine-tuning", HOLDS, f"region {region}; {live}")
    else:
        report.add(
            "C13",
            "the region offers fine-tuning",
            VIOLATED,
            f"region {region}: the fine-tune API is {regions_text(TRAINING_REGIONS)} only; {live}",
        )
    for plan in uses.plans:
        offered = PLAN_REGIONS.get(plan, DEFAULT_PLAN_REGIONS)
        status: Status = HOLDS if region in offered else VIOLATED
        report.add(
            "C27", f"the region offers plan {plan}", status, f"region {region}; plan {plan}: {regions_text(offered)}"
        )
        if plan == "ptu" and uses.on_success == "deploy":
            report.add(
                "C22", "PTU deploys only base models", VIOLATED, "on_success deploys a fine-tuned model with plan ptu"
            )
    if not uses.plans:
        report.add(
            "C27", "the region offers the deployment plan", HOLDS, f"nothing deployed (on_success {uses.on_success})"
        )
    if uses.on_success == "import":
        try:
            await client.custom_models.list_page(1, 1)
        except errors.BailianError as exc:
            report.add(
                "C30",
                "the region offers model import",
                VIOLATED,
                f"region {region}: GET /custom_models/import: {_said(exc)}",
            )
        else:
            report.add(
                "C30",
                "the region offers model import",
                HOLDS,
                f"region {region}: GET /custom_models/import answered 200",
            )


def _quotas(report: Report, account: Account, uses: Uses) -> None:
    if account.jobs is None:
        report.add("C10", "fine-tune jobs quota", UNKNOWN, f"list failed: {account.failures.get('fine-tunes')}")
    else:
        held = [job for job in account.jobs if job.status not in (FineTuneStatus.FAILED, FineTuneStatus.CANCELED)]
        report.add(
            "C10",
            "fine-tune jobs quota",
            *_use(
                len(held), uses.quota_fine_tune_jobs, "jobs running or succeeded", "BAILIAN_FLOW_QUOTA_FINE_TUNE_JOBS"
            ),
        )
        report.add(
            "C5", "fine-tune statuses documented", *_statuses([job.status for job in account.jobs], FineTuneStatus)
        )
    if account.files is None:
        report.add("C15", "files quota", UNKNOWN, f"list failed: {account.failures.get('files')}")
    else:
        count = len(account.files)
        size = sum(info.size or 0 for info in account.files)
        status, text = _use(count, uses.quota_files, "files", "BAILIAN_FLOW_QUOTA_FILES")
        bytes_status: Status = VIOLATED if size > uses.quota_file_bytes else HOLDS
        bytes_text = f"{size / GIB:.2f} of {uses.quota_file_bytes / GIB:.2f} GiB stored"
        if bytes_status == VIOLATED:
            bytes_text += ": the real quota is larger; raise BAILIAN_FLOW_QUOTA_FILE_BYTES"
        worst = VIOLATED if VIOLATED in (status, bytes_status) else HOLDS
        report.add("C15", "files quota (count and bytes)", worst, f"{text}; {bytes_text}")
    if account.deployments is None:
        report.add("C25", "deployments", UNKNOWN, f"list failed: {account.failures.get('deployments')}")
    else:
        running = sum(1 for item in account.deployments if item.status == DeploymentStatus.RUNNING)
        status, text = _statuses([item.status for item in account.deployments], DeploymentStatus)
        report.add(
            "C25",
            "deployments (use and statuses)",
            status,
            f"{len(account.deployments)} deployments, {running} RUNNING (billed); {text}",
        )
    if account.batches is None:
        report.add("C36", "parallel batches quota", UNKNOWN, f"list failed: {account.failures.get('batches')}")
    else:
        running_batches = sum(1 for batch in account.batches if batch.status in BATCH_RUNNING)
        report.add(
            "C36",
            "parallel batches quota",
            *_use(running_batches, uses.quota_batches, "batches running", "BAILIAN_FLOW_QUOTA_BATCHES"),
        )
        report.add(
            "C33", "batch statuses documented", *_statuses([batch.status for batch in account.batches], BatchStatus)
        )


def _use(used: int, limit: int, what: str, setting: str) -> tuple[Status, str]:
    """Use against the limit the pipeline assumes. More than the limit means the real quota is larger."""
    if used > limit:
        return VIOLATED, f"{used} {what} > {limit} assumed: the real quota is larger; raise {setting}"
    full = " (full: new work waits in line)" if used == limit else ""
    return HOLDS, f"{used} of {limit} {what}{full}"


def _statuses(values: Sequence[str], kind: Any) -> tuple[Status, str]:
    known = {value for name, value in vars(kind).items() if name.isupper() and isinstance(value, str)}
    strange = sorted({value for value in values if value not in known})
    if strange:
        return HOLDS, f"undocumented statuses {', '.join(strange)} (read as still running)"
    return HOLDS, f"{len(values)} item(s), every status documented"


async def _page_sizes(client: BailianClient, report: Report) -> None:
    async def fine_tunes(size: int) -> tuple[int | None, int, int]:
        page = await client.fine_tunes.list_page(1, size)
        return _echoed(page), len(page.jobs), page.total

    async def deployments(size: int) -> tuple[int | None, int, int]:
        page = await client.deployments.list_page(1, size)
        return _echoed(page), len(page.deployments), page.total

    async def files(size: int) -> tuple[int | None, int, int]:
        page = await client.files.list_page(1, size)
        return _echoed(page), len(page.files), page.total

    await _page_size(report, "C11", "GET /fine-tunes", fine_tunes, (PAGE_SIZE,))
    remedy = "list deployments 100 a page (pipeline/protocol/bulk.PAGE_SIZES asks 200)"
    await _page_size(report, "C24", "GET /deployments", deployments, DEPLOYMENT_PAGE_SIZES, remedy)
    await _page_size(report, "C18", "GET /files", files, (PAGE_SIZE,))
    try:
        batch_page = await client.batches.list_page(limit=PAGE_SIZE)
    except errors.BailianError as exc:
        report.add("C34", f"GET /batches limit {PAGE_SIZE} accepted", VIOLATED, _said(exc))
    else:
        got = len(batch_page.data)
        capped = batch_page.has_more and got < PAGE_SIZE
        status: Status = VIOLATED if capped else HOLDS
        report.add(
            "C34", f"GET /batches limit {PAGE_SIZE} accepted", status, f"{got} items, has_more {batch_page.has_more}"
        )


def _echoed(page: Any) -> int | None:
    return page.page_size if "page_size" in page.model_fields_set else None


async def _page_size(
    report: Report,
    row: str,
    what: str,
    fetch: Callable[[int], Awaitable[tuple[int | None, int, int]]],
    sizes: Sequence[int],
    remedy: str = "",
) -> None:
    verdicts: list[tuple[Status, str]] = []
    for size in sizes:
        try:
            echoed, got, total = await fetch(size)
        except errors.BailianError as exc:
            verdicts.append((VIOLATED, f"page_size {size} refused: {_said(exc)}"))
            continue
        expected = min(size, total)
        if (echoed is not None and echoed < size) or got < expected:
            verdicts.append(
                (VIOLATED, f"page_size {size} capped: answered page_size {echoed}, {got} of {total} item(s)")
            )
        elif total < size and echoed is None:
            verdicts.append(
                (UNKNOWN, f"page_size {size}: {got} of {total} items, no page_size echoed (too few to tell)")
            )
        else:
            verdicts.append((HOLDS, f"page_size {size} accepted ({got} of {total} item(s))"))
    statuses = [status for status, _ in verdicts]
    worst: Status = VIOLATED if VIOLATED in statuses else UNKNOWN if UNKNOWN in statuses else HOLDS
    sizes_text = "/".join(str(size) for size in sizes)
    evidence = "; ".join(text for _, text in verdicts)
    if worst == VIOLATED and remedy:
        evidence += f": {remedy}"
    report.add(row, f"{what} page size {sizes_text} accepted", worst, evidence)


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


async def _names_kept(client: BailianClient, report: Report, account: Account) -> None:
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


async def _descriptions_listed(client: BailianClient, report: Report, account: Account) -> None:
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
