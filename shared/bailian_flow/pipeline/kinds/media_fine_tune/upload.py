"""received → uploading → file-ready: check the zip by ranged reads from OSS, then stream it to Bailian.

The zip is checked before a byte of it is uploaded: its central directory and each entry's head are read with one
ranged GET each (`ObjectStore.read_range`, pinned with If-Match to the version the run was opened for), so memory
stays flat however large the archive, and a bad zip is a FAILED run naming the entry (the index line and field
where it is one) with nothing uploaded. Only then is it streamed to Bailian's file upload, pinned the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from bailian_flow.client.errors import APIConnectionError, APIStatusError, QuotaExceededError
from bailian_flow.pipeline.protocol import admission, reconcile
from bailian_flow.pipeline.protocol.acting import refuse_or_raise
from bailian_flow.pipeline.protocol.cleanup import Made, delete_file
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError
from bailian_flow.pipeline.protocol.transitions import (
    Current,
    Outcome,
    claim,
    fail,
    generation,
    may_exist,
    never_processed,
    record,
    release,
    superseded_error,
)
from bailian_flow.store import ObjectChangedError, StoreError, bare_etag
from bailian_flow.validate import MAX_REPORTED_ERRORS, DatasetError
from bailian_flow.validate._zip import ArchiveStats, validate_archive
from bailian_flow.validate._zipdir import StoreRangedReader

from .rules import settings_problem, warnings_of


async def step_received(flow: Flow, current: Current) -> Outcome:
    state = current.state
    problem = settings_problem(flow, state)
    if problem is not None:
        await fail(flow, current, problem)
        return "stop"
    if await admission.must_wait(flow, state, admission.FILES):
        needs = state.source.size
        await admission.wait(flow, current, admission.FILES, "requested", needs_bytes=needs, why="other runs wait")
        return "again"
    claimed = await claim(flow, current, "uploading", f"checking and uploading {state.source.key}")
    if claimed is not None:
        await act_upload(flow, claimed)
    return "again"


def _dataset_error(exc: DatasetError) -> RunError:
    return RunError(
        reason=str(exc),
        object=exc.object_name,
        line=exc.line,
        field=exc.field,
        code="InvalidDataset",
        errors=[problem.brief() for problem in exc.errors],
    )


async def _check(flow: Flow, current: Current) -> ArchiveStats | RunError:
    """The zip's own verdict, read by ranges of the run's version of it."""
    state = current.state
    key, etag = state.source.key, state.source.etag
    assert key is not None
    info = await flow.store.head(key)
    if info is None:
        return RunError(reason=f"object {key} does not exist (deleted before it was processed?)", object=key)
    if etag is not None and bare_etag(etag).upper() != info.etag.upper():
        return superseded_error(current.state, info.etag)
    reader = StoreRangedReader(flow.store, key, info.size, info.etag)
    try:
        return await validate_archive(
            reader, key, model=state.settings.model, role="training", max_errors=MAX_REPORTED_ERRORS
        )
    except DatasetError as exc:
        return _dataset_error(exc)
    except ObjectChangedError:
        newer = await flow.store.head(key)
        return superseded_error(current.state, newer.etag if newer else None)
    except StoreError as exc:
        if exc.status == 403:
            reason = f"the function's role may not read {key} (OSS answered 403 AccessDenied)"
            return RunError(reason=reason, object=key, field="source.key", code="AccessDenied")
        raise


async def _upload(flow: Flow, current: Current, description: str) -> str:
    """Stream the checked version to Bailian; an overwrite meanwhile aborts the body (no complete file is made)."""
    state = current.state
    key = state.source.key
    assert key is not None and state.source.etag is not None
    changed: list[ObjectChangedError] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in flow.store.stream(key, if_match=state.source.etag):
                yield chunk
        except ObjectChangedError as exc:
            changed.append(exc)
            raise

    try:
        uploaded = await flow.client.files.upload(
            body(),
            purpose="fine-tune",
            description=description,
            # Named after the run (the list may not echo the description, service-contract.md#C18), a .zip still.
            filename=reconcile.file_name(state.run_id, state.attempt, "train", generation(current), suffix=".zip"),
            size=state.source.size,
        )
    except Exception:
        if changed:
            raise changed[0] from None
        raise
    if changed:
        # The server stored a body we did not finish: nobody may train on it.
        await delete_file(flow, uploaded.file_id)
        raise changed[0]
    return uploaded.file_id


async def act_upload(flow: Flow, current: Current) -> None:
    from bailian_flow.estimate import media_estimate

    state = current.state
    description = reconcile.file_description(state.run_id, state.attempt, "train", generation(current))
    if may_exist(current) and (found := await reconcile.find_file_of(flow, state.run_id, state.attempt, "train", None)):
        await record(flow, current, [Made("file", found.file_id)], "file-ready", "file found", file_id=found.file_id)
        return
    verdict = await _check(flow, current)
    if isinstance(verdict, RunError):
        await fail(flow, current, verdict)
        return
    try:
        file_id = await _upload(flow, current, description)
    except ObjectChangedError:
        newer = await flow.store.head(state.source.key or "")
        await fail(flow, current, superseded_error(state, newer.etag if newer else None))
        return
    except QuotaExceededError as exc:
        await admission.wait_for_quota(flow, current, exc, admission.FILES, "requested", state.source.size)
        return
    except APIStatusError as exc:
        await refuse_or_raise(flow, current, exc, "uploading the dataset", state.source.key)
        return
    except APIConnectionError as exc:
        own = generation(current)
        if exc.maybe_processed and (
            found := await reconcile.find_file_of(flow, state.run_id, state.attempt, "train", own)
        ):
            file_id = found.file_id
        else:
            if never_processed(exc):
                await release(flow, current, f"uploading: {exc}")
            raise
    plan = state.settings.on_success.plan if state.settings.on_success.action == "deploy" else None
    await record(
        flow,
        current,
        [Made("file", file_id)],
        "file-ready",
        f"file {file_id} registered ({verdict.records} samples, {verdict.kind} zip of {verdict.entries} entries)",
        file_id=file_id,
        records=verdict.records,
        warnings=[*state.warnings, *verdict.warnings, *warnings_of(state)],
        estimate=media_estimate(state.settings.model, state.settings.hyper_parameters, verdict.records, plan),
    )
