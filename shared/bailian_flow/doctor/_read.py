"""The read-only checks: access, regions, quota use, list page sizes, names and descriptions kept.

Nothing here writes to the account. Each check names its docs/service-contract.md row; a call that fails becomes
the evidence of its row ("unknown" or "violated"), never a traceback. Only the first call's failure stops the
doctor (`Unusable`): without access nothing else can be read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from bailian_flow.client import errors
from bailian_flow.client.models.batches import BatchStatus
from bailian_flow.client.models.deployments import DeploymentStatus
from bailian_flow.client.models.fine_tunes import FineTuneStatus

from ._account import Account, Unusable
from ._account import said as _said
from ._kept import descriptions_listed, names_kept
from ._pages import PAGE_SIZE, page_sizes
from ._report import HOLDS, UNKNOWN, VIOLATED, Report, Status
from ._uses import DEFAULT_PLAN_REGIONS, PLAN_REGIONS, TRAINING_REGIONS, Uses, regions_text

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient

__all__ = ["Unusable", "read_only"]

T = TypeVar("T")

BATCH_RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
GIB = 1 << 30


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
    except errors.BailianError as exc:  # an answer that is not the file list: not Bailian at that URL
        raise Unusable(f"GET {client.endpoints.native}/files: {_said(exc)}; is DASHSCOPE_BASE_URL right?") from None


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
    await page_sizes(client, report)
    await names_kept(client, report, account)
    await descriptions_listed(client, report, account)
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
    if uses.model.startswith("wan"):
        # service-contract.md#C45: the Chinese Wan fine-tune page says Beijing, the English one Singapore.
        wan: Status = HOLDS if region == "cn" else UNKNOWN
        report.add(
            "C45",
            f"the region offers {uses.model} fine-tunes",
            wan,
            f"region {region}; the Chinese page: "
            "China (Beijing); the English page: Singapore for the international site",
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
