"""received → uploading → file-ready: validate the dataset while streaming it to Bailian."""

from __future__ import annotations

from bailian_flow.client.errors import (
    APIConnectionError,
    APIStatusError,
    FileTooLargeError,
    QuotaExceededError,
    UploadFailedError,
)
from bailian_flow.estimate import run_estimate
from bailian_flow.pipeline.kinds.fine_tune.ingest import SourceMissing, SourceSuperseded, ingest
from bailian_flow.pipeline.protocol import admission, reconcile
from bailian_flow.pipeline.protocol.acting import refuse_or_raise
from bailian_flow.pipeline.protocol.cleanup import Made
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError
from bailian_flow.pipeline.protocol.transitions import (
    Current,
    Outcome,
    claim,
    commit,
    fail,
    generation,
    may_exist,
    never_processed,
    record,
    release,
    superseded_error,
)
from bailian_flow.store import StoreError
from bailian_flow.validate import DatasetError


class SourceForbidden(PermissionError):
    """The function's role may not read a key (403 from OSS): retrying cannot help until the role changes."""

    def __init__(self, key: str, field: str) -> None:
        super().__init__(f"the function's role may not read {key} (OSS answered 403 AccessDenied)")
        self.key = key
        self.field = field


class SourceTooLarge(ValueError):
    """A dataset over the per-file size Bailian documents (service-contract.md#C14): refused before any byte is sent."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(
            f"object {key} is {size} bytes; Bailian takes at most {limit} bytes ({limit >> 20} MB) per fine-tune file"
        )
        self.key = key


async def step_received(flow: Flow, current: Current) -> Outcome:
    state = current.state
    if state.source.file_id:
        await commit(flow, current, "file-ready", "registered file given", file_id=state.source.file_id)
        return "again"
    if await admission.must_wait(flow, state, admission.FILES):
        needs = state.source.size
        await admission.wait(flow, current, admission.FILES, "requested", needs_bytes=needs, why="other runs wait")
        return "again"
    claimed = await claim(flow, current, "uploading", f"uploading {state.source.key}")
    if claimed is not None:
        await act_upload(flow, claimed)
    return "again"


async def _ensure_file(
    flow: Flow, current: Current, key: str, role: str, etag: str | None = None
) -> tuple[str, int, list[str], int | None]:
    """The file id of `key` uploaded for this run: found by its description, or streamed up now."""
    state = current.state
    own = generation(current)
    description = reconcile.file_description(state.run_id, state.attempt, role, own)
    # Named after the run too: the list may not echo the description (service-contract.md#C18).
    name = reconcile.file_name(state.run_id, state.attempt, role, own)
    if (
        may_exist(current)
        and (found := await reconcile.find_file_of(flow, state.run_id, state.attempt, role, None)) is not None
    ):
        return found.file_id, state.records or 0, [], None
    try:
        result = await ingest(
            flow,
            key,
            training_type=state.settings.training_type,
            description=description,
            filename=name,
            etag=etag,
        )
    except StoreError as exc:
        if exc.status == 403:
            raise SourceForbidden(key, "validation_key" if role == "validation" else "source.key") from None
        raise
    except FileTooLargeError as exc:
        raise SourceTooLarge(key, exc.size, exc.limit) from None
    except APIConnectionError as exc:
        if (
            exc.maybe_processed
            and (found := await reconcile.find_file_of(flow, state.run_id, state.attempt, role, own)) is not None
        ):
            return found.file_id, state.records or 0, [], None
        raise
    return result.file_id, result.records, result.warnings, result.tokens


async def act_upload(flow: Flow, current: Current) -> None:
    state = current.state
    assert state.source.key is not None
    try:
        # Pinned to the version the run was opened for: a re-upload of the key is another run's to train.
        file_id, records, warnings, tokens = await _ensure_file(
            flow, current, state.source.key, "train", state.source.etag
        )
        validation_id = None
        if state.settings.validation_key:
            validation_id, _, _, _ = await _ensure_file(flow, current, state.settings.validation_key, "validation")
    except DatasetError as exc:
        error = RunError(
            reason=str(exc),
            object=exc.object_name,
            line=exc.line,
            field=exc.field,
            code="InvalidDataset",
            errors=[problem.brief() for problem in exc.errors],
        )
        await fail(flow, current, error)
        return
    except SourceMissing as exc:
        await fail(flow, current, RunError(reason=str(exc), object=exc.key, code="SourceMissing"))
        return
    except SourceSuperseded as exc:
        await fail(flow, current, superseded_error(state, exc.newer_etag))
        return
    except SourceForbidden as exc:
        await fail(flow, current, RunError(reason=str(exc), object=exc.key, field=exc.field, code="AccessDenied"))
        return
    except SourceTooLarge as exc:
        await fail(flow, current, RunError(reason=str(exc), object=exc.key, code="FileTooLarge"))
        return
    except QuotaExceededError as exc:
        await admission.wait_for_quota(flow, current, exc, admission.FILES, "requested", state.source.size)
        return
    except UploadFailedError as exc:
        await fail(flow, current, RunError(reason=f"Bailian rejected the file: {exc}", object=state.source.key))
        return
    except APIStatusError as exc:
        await refuse_or_raise(flow, current, exc, "uploading the dataset", state.source.key)
        return
    except APIConnectionError as exc:
        if never_processed(exc):
            await release(flow, current, f"uploading: {exc}")
        raise
    made = [Made("file", file_id)] + ([Made("file", validation_id)] if validation_id else [])
    await record(
        flow,
        current,
        made,
        "file-ready",
        f"file {file_id} registered ({records} records)",
        file_id=file_id,
        validation_file_id=validation_id,
        records=records,
        warnings=warnings,
        estimate=run_estimate(state.settings.model, state.settings.hyper_parameters, records, tokens),
    )
