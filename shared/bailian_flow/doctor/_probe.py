"""`doctor --probe`: cheap write-and-undo checks against the real service.

1. A tiny native file: uploaded (answer shape, C16/C17), found in the list (lag, C41; description, C18), deleted
   and gone (C20).
2. A batch end to end on the batch page's free test model: `batch-test-model` with line url `/v1/chat/ds-test`
   "不走推理流程，因此不产生模型推理费用" (runs no inference, so no inference charge), input ≤ 1 MB and ≤ 100 lines,
   at most 2 parallel tasks — OpenAI兼容-Batch, 快速开始, https://help.aliyun.com/document_detail/2975721.html
   (https://help.aliyun.com/zh/model-studio/batch-interfaces-compatible-with-openai). Upload (C39), create on the
   main host (C31, C32), a third parallel create to record the real refusal (C36), poll (C33), list by `ds_name`
   (C34), download the output (C37).

Everything made is recorded as it is made and undone in `finally` blocks: a failing step still cancels its batches
and deletes its files; what could not be undone is reported by id.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bailian_flow.client import errors
from bailian_flow.client.models.batches import BatchStatus

from ._account import said as _said
from ._report import HOLDS, UNKNOWN, VIOLATED, Report

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient
    from bailian_flow.client.models.batches import Batch
    from bailian_flow.client.models.files import FileInfo

__all__ = ["TEST_ENDPOINT", "TEST_MODEL", "Made", "probe"]

TEST_MODEL = "batch-test-model"
TEST_ENDPOINT = "/v1/chat/ds-test"
TEST_LINES = 2
# The output of two test lines is a few KiB: more is not the answer we asked for, and is not read whole.
MAX_OUTPUT_BYTES = 1 << 20
# How often and how long to look: the list lag and the test batch (minutes on the real service).
POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 15.0
LIST_LAG_LIMIT = 120.0
# How long a cancelled batch is given to settle so its result files can be deleted too.
SETTLE_SECONDS = 60.0


@dataclass
class Made:
    """What the probes created and whether each was undone: the proof that nothing is left behind."""

    native_files: list[str] = field(default_factory=list)
    compat_files: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


async def probe(client: BailianClient, report: Report, stamp: str, batch_timeout: float) -> Made:
    made = Made()
    await _file_probe(client, report, stamp, made)
    await _batch_probe(client, report, stamp, made, batch_timeout)
    if made.left:
        report.add("probe", "everything made was undone", VIOLATED, f"left behind: {', '.join(made.left)}")
    else:
        made_count = len(made.native_files) + len(made.compat_files) + len(made.batches)
        report.add(
            "probe", "everything made was undone", HOLDS, f"{made_count} resources made, all deleted or cancelled"
        )
    return made


# -- 1. a native file -------------------------------------------------------------------------------------------


async def _file_probe(client: BailianClient, report: Report, stamp: str, made: Made) -> None:
    name = f"bf-doctor-{stamp}.jsonl"
    description = f"bailian-flow doctor probe {stamp}"
    line = {"messages": [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong"}]}
    body = (json.dumps(line) + "\n").encode()
    try:
        uploaded = await client.files.upload(body, purpose="fine-tune", description=description, filename=name)
    except errors.QuotaExceededError as exc:
        report.add(
            "C16",
            "a full file quota answers 200 failed_uploads",
            HOLDS,
            f"the upload was refused as a full quota: {_said(exc)}",
        )
        return
    except errors.BailianError as exc:
        report.add("C17", "upload answers data.uploaded_files", VIOLATED, _said(exc))
        return
    made.native_files.append(uploaded.file_id)
    try:
        report.add("C17", "upload answers data.uploaded_files", HOLDS, f"file {uploaded.file_id} ({len(body)} B)")
        await _file_listed(client, report, uploaded.file_id, description, len(body))
    finally:
        await _file_deleted(client, report, uploaded.file_id, made)


async def _file_listed(client: BailianClient, report: Report, file_id: str, description: str, size: int) -> None:
    started = time.monotonic()
    while True:
        listed = await _listed_file(client, file_id)
        waited = time.monotonic() - started
        if listed is not None:
            break
        if waited > LIST_LAG_LIMIT:
            report.add("C41", "a create shows in its list at once", VIOLATED, f"not listed after {waited:.0f} s")
            return
        await asyncio.sleep(POLL_SECONDS)
    if waited < POLL_SECONDS:
        report.add("C41", "a create shows in its list at once", HOLDS, "the new file was in the first list")
    else:
        report.add(
            "C41",
            "a create shows in its list at once",
            VIOLATED,
            f"listed after {waited:.1f} s: a look-up right after a lost create can miss it",
        )
    echoed = listed.description == description
    report.add(
        "C18",
        "file list echoes descriptions (probe)",
        HOLDS if echoed else VIOLATED,
        f"listed with name {listed.name!r}, size {listed.size}" + ("" if echoed else ", without its description"),
    )
    if listed.size is not None and listed.size != size:
        report.add("C18", "file list echoes the size", VIOLATED, f"uploaded {size} B, listed {listed.size} B")


async def _listed_file(client: BailianClient, file_id: str) -> FileInfo | None:
    async for info in client.files.list(page_size=100):
        if info.file_id == file_id:
            return info
    return None


async def _file_deleted(client: BailianClient, report: Report, file_id: str, made: Made) -> None:
    try:
        await client.files.delete(file_id)
    except errors.BailianError as exc:
        made.left.append(f"native file {file_id} ({_said(exc)})")
        report.add("C20", "DELETE /files/{id} deletes", VIOLATED, _said(exc))
        return
    try:
        await client.files.get(file_id)
    except errors.NotFoundError:
        report.add("C20", "DELETE /files/{id} deletes", HOLDS, f"deleted; GET {file_id} then answered 404")
    except errors.BailianError as exc:
        report.add("C20", "DELETE /files/{id} deletes", UNKNOWN, f"deleted; GET then answered {_said(exc)}")
    else:
        report.add("C20", "DELETE /files/{id} deletes", VIOLATED, f"deleted, yet GET {file_id} still answers it")


# -- 2. a batch on the free test model -----------------------------------------------------------------------------


def _test_input() -> bytes:
    lines = [
        {
            "custom_id": str(number),
            "method": "POST",
            "url": TEST_ENDPOINT,
            "body": {"model": TEST_MODEL, "messages": [{"role": "user", "content": f"doctor {number}"}]},
        }
        for number in range(1, TEST_LINES + 1)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


async def _batch_probe(client: BailianClient, report: Report, stamp: str, made: Made, timeout: float) -> None:
    name = f"bf-doctor-{stamp}"
    try:
        upload = await client.compat_files.upload(_test_input(), purpose="batch", filename=f"{name}.jsonl")
    except errors.BailianError as exc:
        report.add("C39", "batch input upload (compatible files)", VIOLATED, _said(exc))
        return
    made.compat_files.append(upload.id)
    created: list[Batch] = []
    try:
        report.add("C39", "batch input upload (compatible files)", HOLDS, f"file {upload.id}, status {upload.status}")
        try:
            first = await client.batches.create(upload.id, TEST_ENDPOINT, metadata={"ds_name": name})
        except errors.BailianError as exc:
            report.add(
                "C32",
                "batch create on the main host",
                VIOLATED,
                f"POST {client.endpoints.compatible}/batches: {_said(exc)}",
            )
            return
        created.append(first)
        made.batches.append(first.id)
        echoed = (first.metadata or {}).get("ds_name") == name
        report.add(
            "C32",
            "batch create on the main host, metadata echoed",
            HOLDS if echoed else VIOLATED,
            f"{first.id} on {client.endpoints.compatible}; metadata.ds_name {'echoed' if echoed else 'missing'}",
        )
        await _parallel_limit(client, report, upload.id, name, created, made)
        for extra in created[1:]:
            await _cancel_unfinished(client, extra.id, made)
        finished = await _wait(client, report, first.id, timeout)
        await _listed(client, report, first.id, name)
        if finished is not None:
            await _results(client, report, finished, made)
    finally:
        for batch in created:
            await _cancel_unfinished(client, batch.id, made)
        for batch in created:
            await _result_files(client, batch.id, made)
        for file_id in dict.fromkeys(made.compat_files):
            try:
                await client.compat_files.delete(file_id)
            except errors.BailianError as exc:
                made.left.append(f"compatible file {file_id} ({_said(exc)})")


async def _parallel_limit(
    client: BailianClient, report: Report, file_id: str, name: str, created: list[Batch], made: Made
) -> None:
    """service-contract.md#C36: two more creates while the first runs; the documented limit is 2 at once, and the
    refusal's wording is undocumented: it is recorded, and whether the client reads it as a quota (a wait)."""
    for extra in (2, 3):
        try:
            batch = await client.batches.create(file_id, TEST_ENDPOINT, metadata={"ds_name": f"{name}-{extra}"})
        except errors.QuotaExceededError as exc:
            status = HOLDS if exc.quota == "batches" else VIOLATED
            report.add(
                "C36",
                "a batch over the parallel limit waits",
                status,
                f"batch {extra} refused as quota {exc.quota}: {_said(exc)}",
            )
            return
        except errors.BailianError as exc:
            report.add(
                "C36",
                "a batch over the parallel limit waits",
                VIOLATED,
                f"batch {extra} refused with an answer the client does not read as a quota: {_said(exc)}",
            )
            return
        created.append(batch)
        made.batches.append(batch.id)
    report.add(
        "C36",
        "a batch over the parallel limit waits",
        VIOLATED,
        "3 test batches were accepted at once: quota_batches 2 is conservative",
    )


async def _wait(client: BailianClient, report: Report, batch_id: str, timeout: float) -> Batch | None:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    pause = POLL_SECONDS
    while True:
        try:
            batch = await client.batches.get(batch_id)
        except errors.BailianError as exc:
            report.add("C33", "batch statuses documented", UNKNOWN, f"GET /batches/{batch_id}: {_said(exc)}")
            return None
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if batch.is_terminal or time.monotonic() > deadline:
            break
        await asyncio.sleep(pause)
        # The real test batch takes minutes: a poll a second for all of it would be hundreds of calls.
        pause = min(pause * 1.5, MAX_POLL_SECONDS)
    known = {value for key, value in vars(BatchStatus).items() if key.isupper() and isinstance(value, str)}
    strange = [status for status in seen if status not in known]
    report.add(
        "C33",
        "batch statuses documented",
        VIOLATED if strange else HOLDS,
        " → ".join(seen) + (f" (undocumented: {', '.join(strange)})" if strange else ""),
    )
    if not batch.is_terminal:
        report.add("C37", "test batch end to end", UNKNOWN, f"still {batch.status} after {timeout:.0f} s (cancelled)")
        return None
    return batch


async def _listed(client: BailianClient, report: Report, batch_id: str, name: str) -> None:
    try:
        found = [batch async for batch in client.batches.list(ds_name=name)]
    except errors.BailianError as exc:
        report.add("C34", "batch list filters (ds_name)", VIOLATED, _said(exc))
        return
    ids = [batch.id for batch in found]
    status = HOLDS if batch_id in ids else VIOLATED
    report.add(
        "C34",
        "batch list filters (ds_name)",
        status,
        f"ds_name={name} listed {len(ids)} batch(es), ours {'among them' if batch_id in ids else 'missing'}",
    )


async def _results(client: BailianClient, report: Report, batch: Batch, made: Made) -> None:
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            made.compat_files.append(file_id)
    if batch.status != BatchStatus.COMPLETED or not batch.output_file_id:
        report.add("C37", "test batch end to end", VIOLATED, f"ended {batch.status}: {str(batch.errors)[:200]}")
        return
    try:
        raw = b""
        async for chunk in client.compat_files.content(batch.output_file_id):
            raw += chunk
            if len(raw) > MAX_OUTPUT_BYTES:
                raise ValueError(f"larger than {MAX_OUTPUT_BYTES} B for {TEST_LINES} lines")
        ids = sorted(json.loads(line)["custom_id"] for line in raw.splitlines() if line.strip())
    except (errors.BailianError, ValueError, KeyError, TypeError) as exc:
        report.add("C37", "test batch end to end", VIOLATED, f"output {batch.output_file_id} unreadable: {_said(exc)}")
        return
    expected = [str(number) for number in range(1, TEST_LINES + 1)]
    status = HOLDS if ids == expected else VIOLATED
    report.add(
        "C37",
        "test batch end to end",
        status,
        f"{batch.id} completed; output {batch.output_file_id} answers custom_ids {ids}",
    )


async def _cancel_unfinished(client: BailianClient, batch_id: str, made: Made) -> None:
    try:
        batch = await client.batches.get(batch_id)
        if batch.is_terminal or batch.status == BatchStatus.CANCELLING:
            return
        try:
            await client.batches.cancel(batch_id)
        except errors.APIStatusError:
            # It may have ended between the two calls (409): only a batch still running is left behind.
            if not (await client.batches.get(batch_id)).is_terminal:
                raise
    except errors.BailianError as exc:
        made.left.append(f"batch {batch_id} ({_said(exc)})")


async def _result_files(client: BailianClient, batch_id: str, made: Made) -> None:
    """A cancelled batch may still write result files: wait for it to settle (bounded), then have them deleted."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            batch = await client.batches.get(batch_id)
        except errors.BailianError as exc:
            made.left.append(f"batch {batch_id} ({_said(exc)})")
            return
        if batch.is_terminal:
            made.compat_files.extend(file_id for file_id in (batch.output_file_id, batch.error_file_id) if file_id)
            return
        if time.monotonic() > deadline:
            made.left.append(f"batch {batch_id} still {batch.status}: its result files, if any, are not deleted")
            return
        await asyncio.sleep(POLL_SECONDS)
