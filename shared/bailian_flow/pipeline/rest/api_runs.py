"""What the REST API does to runs: list, show, start, cancel, retry, tear down, and inbound callbacks.

`api` is the door (routes, auth, input bounds); a refusal here is an `HttpError`, which the door answers as JSON.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bailian_flow.client.errors import NotFoundError
from bailian_flow.pipeline.protocol import inputs, kinds, offered
from bailian_flow.pipeline.protocol.admission import places_in_line
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.settings import SettingsError, resolve_settings, with_overrides
from bailian_flow.pipeline.protocol.state import RunState, Stage
from bailian_flow.pipeline.protocol.transitions import commit, current_of, load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import bare_etag

log = logging.getLogger("bailian_flow.pipeline")

MAX_LIST = 200


# What `POST /runs` takes; anything else is refused by name, so a typo is not silently ignored.
def _request_fields() -> list[str]:
    """Body fields that start a run of a kind of its own (e.g. `import`), in registration order."""
    return [spec.request_field for spec in kinds.all_specs() if spec.request_field]


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def list_runs(flow: Flow, query: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; `next` is the `after` value of the following page (None on the last)."""
    limit_text, after = inputs.query_value(query, "limit"), inputs.query_value(query, "after")
    wanted_stage, wanted_kind = inputs.query_value(query, "stage"), inputs.query_value(query, "kind")
    try:
        limit = int(limit_text or "50")
    except ValueError:
        raise HttpError(400, "InvalidParameter", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIST:
        raise HttpError(400, "InvalidParameter", f"limit must be between 1 and {MAX_LIST}")
    if wanted_kind is not None and wanted_kind not in kinds.REGISTERED:
        raise HttpError(400, "InvalidParameter", f"kind must be one of {', '.join(sorted(kinds.REGISTERED))}")
    run_ids, next_cursor = await flow.runs.recent(limit=limit, after=after)
    loaded = await asyncio.gather(*(load(flow, run_id) for run_id in run_ids))
    states = [current.state for current in loaded if current is not None]
    places = await places_in_line(flow, states)
    runs = [_shown(state, places) for state in states]
    if wanted_stage:
        runs = [run for run in runs if run["stage"] == wanted_stage]
    if wanted_kind:
        runs = [run for run in runs if run["kind"] == wanted_kind]
    return runs, next_cursor


def _shown(state: RunState, places: dict[str, int]) -> dict[str, Any]:
    """A run as the API shows it; a waiting run also says its place in line (computed now, never stored)."""
    shown = state.public()
    if state.run_id in places:
        shown["place_in_line"] = places[state.run_id]
    return shown


async def show_run(flow: Flow, run_id: str) -> dict[str, Any]:
    history = await flow.runs.history(run_id)
    if not history:
        raise HttpError(404, "NotFound", f"run {run_id} does not exist")
    from bailian_flow.pipeline.rest.run_facts import run_facts

    latest = current_of(history[-1]).state  # the kind's own state model: a batch run's shards
    # What the run still holds on Bailian by its records (a DONE run's deployment, an ending run's leftovers).
    return {
        "run": {**_shown(latest, await places_in_line(flow, [latest])), "owns": latest.owned()},
        "history": [
            {"seq": entry.seq, "stage": entry.stage, "changed": entry.changed, "at": entry.at} for entry in history
        ],
        "facts": await run_facts(flow, latest),
    }


async def start_run(flow: Flow, body: dict[str, Any]) -> tuple[int, Any]:
    from bailian_flow.pipeline.protocol.intake import open_run_for_file, open_run_for_object

    unknown = sorted(set(body) - {"oss_key", "file_id", "settings", *_request_fields()})
    if unknown:
        raise HttpError(400, "InvalidParameter", f"unknown field {inputs.shown(unknown[0])}")
    sources = ["oss_key", "file_id", *_request_fields()]
    if sum(name in body for name in sources) != 1:
        raise HttpError(400, "InvalidParameter", f"give one of {', '.join(sources[:-1])} or {sources[-1]}")
    kind, key = _object_kind(flow, body["oss_key"]) if "oss_key" in body else (_requested_kind(body), "")
    explicit = request_settings(flow, body.get("settings"), kind=kind)
    if explicit is None and "oss_key" in body:
        # Nothing of the body to blame but the region: still a 400 before any run (service-contract.md#C13).
        _refuse_region(flow, kind)
    try:
        if "oss_key" in body:
            state, created = await open_run_for_object(
                flow,
                flow.settings.bucket,
                key,
                None,
                explicit=explicit,
                first_stage="requested",
                kind=kind,
                field="oss_key",
            )
            if state is None:
                raise HttpError(404, "NotFound", f"object {key} does not exist in {flow.settings.bucket}")
        elif "file_id" in body:
            file_id = inputs.plain_id(body["file_id"], field="file_id")
            try:
                await flow.client.files.get(file_id)
            except NotFoundError:
                raise HttpError(404, "NotFound", f"file {file_id} is not registered with Bailian") from None
            state, created = await open_run_for_file(flow, file_id, explicit=explicit)
        else:
            spec = next(spec for spec in kinds.all_specs() if spec.request_field in body)
            state, created = await spec.required("start_request")(flow, body)
    except SettingsError as exc:
        raise HttpError(400, "InvalidSettings", exc.reason) from None
    if not created and explicit and not _agrees(state, explicit):
        raise HttpError(
            409,
            "RunExists",
            f"run {state.run_id} already exists for this source with other settings (it is "
            f"{state.public()['stage']}); to run it with these settings, POST /runs/{state.run_id}/retry with "
            '{"settings": ...} once it has FAILED, or upload the object again to start a new run',
        )
    return (202 if created else 200), {"run": state.public(), "created": created}


def _requested_kind(body: dict[str, Any]) -> str:
    """The kind a body without `oss_key` starts: the one whose request field it holds, else a fine-tune."""
    return next(
        (spec.name for spec in kinds.all_specs() if spec.request_field and spec.request_field in body), "fine-tune"
    )


def _object_kind(flow: Flow, value: Any) -> tuple[str, str]:
    """The kind of run an `oss_key` opens (the kind whose watched prefix holds it, the deepest prefix first) and
    the key made canonical; outside every prefix, the first registered kind's prefix names the mistake."""
    watched = [(kind, prefix, suffix) for kind, prefix, suffix in kinds.watched(flow.settings, chained=False)]
    first_error: inputs.InputError | None = None
    # The kind whose suffix the key has first (two kinds may watch one prefix: `.jsonl` and `.zip` datasets).
    ends = str(value) if isinstance(value, str) else ""
    for kind, prefix, _ in sorted(watched, key=lambda item: (ends.endswith(item[2]), len(item[1])), reverse=True):
        try:
            return kind, inputs.object_key(value, prefix=prefix, field="oss_key")
        except inputs.InputError as exc:
            if kind == watched[0][0]:
                first_error = exc
    assert first_error is not None
    raise first_error


def request_settings(flow: Flow, value: Any, *, kind: str = "fine-tune") -> dict[str, Any] | None:
    """A request's own settings are the caller's to fix now (400, no run); a bad sidecar or metadata on the
    object is the dataset's problem and fails its run instead."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HttpError(400, "InvalidParameter", "settings must be an object")
    check = kinds.spec_of(kind).hook("request_settings")
    try:
        if check is not None:
            check(value)
            return value
        resolved = resolve_settings(flow.settings.defaults, explicit=value)
        if not kinds.spec_of(kind).request_field:
            # A kind started by a body of its own (an import) checks what it builds from it (`start_request`).
            offered.check(flow.settings.region, kind, resolved)
    except SettingsError as exc:
        raise HttpError(400, "InvalidSettings", exc.reason) from None
    if resolved.validation_key is not None:
        inputs.object_key(resolved.validation_key, prefix=flow.settings.datasets_prefix, field="validation_key")
    return value


def _refuse_region(flow: Flow, kind: str) -> None:
    refused = offered.refusal(flow.settings.region, kind, None)
    if refused is not None:
        raise HttpError(400, "InvalidSettings", refused.reason)


def _agrees(state: RunState, explicit: dict[str, Any]) -> bool:
    """Whether the run already has these settings: a repeated request is the same request, not a conflict."""
    agrees = kinds.spec_of(state.kind).hook("agrees")
    try:
        if agrees is not None:
            return bool(agrees(state, explicit))
        return with_overrides(state.settings, explicit) == state.settings
    except SettingsError:
        return False


async def cancel_run(flow: Flow, run_id: str) -> dict[str, Any]:
    """Fence out every act of the run, then undo what it made (`pipeline/cancel.py`).

    Answers the run `canceled`, or `canceling` while an act may still be in flight: the timer finalizes it once
    that act's lease has run out.
    """
    from bailian_flow.pipeline.protocol import cancel

    for _ in range(5):
        current = await load(flow, run_id)
        if current is None:
            raise HttpError(404, "NotFound", f"run {run_id} does not exist")
        state = current.state
        if state.terminal:
            raise HttpError(409, "Conflict", f"run {run_id} is already {state.public()['stage']}")
        if state.stage == "canceling":
            # Asked twice: the first request's end may never have landed (its sweep failed, its invocation
            # died): try it again now when it may land, rather than answer "already canceling" and do nothing.
            if cancel.finalizable(flow, current):
                ended = await cancel.finalize(flow, current)
                if ended is not None:
                    return ended.public()
                latest = await load(flow, run_id)
                return (latest or current).state.public()
            return state.public()
        if state.stage == "cleaning-up":
            return state.public()  # failing already: its end of life undoes everything, as a cancel's would
        begun = await cancel.begin(flow, current, "requested through the API")
        if begun is None:
            continue
        canceling, wait = begun
        if wait:
            await cancel.undo_visible(flow, canceling)
            return canceling.state.public()
        finished = await cancel.finalize(flow, canceling)
        if finished is not None:
            return finished.public()
        # A compensating actor noted something meanwhile: the timer finalizes.
        latest = await load(flow, run_id)
        return (latest or canceling).state.public()
    raise HttpError(409, "Conflict", f"run {run_id} kept changing; try again")


async def teardown_run(flow: Flow, run_id: str) -> dict[str, Any]:
    """Undeploy a DONE run's model; asking again once it is undeployed answers the same run."""
    from bailian_flow.pipeline.delivery.lifecycle import DeleteRefused, can_tear_down, retry_tear_down, tear_down

    for _ in range(5):
        current = await load(flow, run_id)
        if current is None:
            raise HttpError(404, "NotFound", f"run {run_id} does not exist")
        if current.state.undeployed_at:
            return current.state.public()
        refusal = can_tear_down(current.state)
        if refusal is not None:
            raise HttpError(409, "Conflict", refusal)
        try:
            written = await tear_down(flow, current, "torn down through the API")
        except DeleteRefused as refused:
            # Not undeployed yet: the timer retries the delete every tick until it lands (the run says so).
            written = await retry_tear_down(flow, current, refused)
        if written is not None:
            return written.public()
    raise HttpError(409, "Conflict", f"run {run_id} kept changing; try again")


async def scale_run(flow: Flow, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Resize what a DONE run serves, through its kind's `scale` hook (a kind without one cannot be scaled)."""
    for _ in range(5):
        current = await load(flow, run_id)
        if current is None:
            raise HttpError(404, "NotFound", f"run {run_id} does not exist")
        hook = kinds.spec_of(current.state.kind).hook("scale")
        if hook is None:
            raise HttpError(409, "Conflict", f"runs of kind {current.state.kind} cannot be scaled")
        try:
            written: RunState | None = await hook(flow, current, body)
        except SettingsError as exc:
            raise HttpError(
                400, "InvalidParameter", f"{exc.field}: {exc.reason}" if exc.field else exc.reason
            ) from None
        except kinds.HookRefused as exc:
            raise HttpError(409, "Conflict", str(exc)) from None
        if written is not None:
            return written.public()
    raise HttpError(409, "Conflict", f"run {run_id} kept changing; try again")


def _resume_stage(state: RunState) -> Stage | None:
    retry_from = kinds.spec_of(state.kind).retry_from
    if retry_from is not None:
        return retry_from
    if state.kind == "import":
        return "job-succeeded"
    if (state.finetuned_output and not state.job_deleted) or state.imported_model:
        return "job-succeeded"
    if state.file_id and not state.files_deleted:
        return "file-ready"
    if state.source.key or state.source.file_id:
        return "requested"
    return None


def _refuse_superseded(state: RunState, current_etag: str | None) -> None:
    """A run is bound to one version of its object: once the key holds another, that version's run is the one."""
    source = state.source
    if current_etag is None or source.etag is None or source.bucket is None or source.key is None:
        return
    if bare_etag(current_etag).upper() != bare_etag(source.etag).upper():
        newer = run_id_for(source.bucket, source.key, current_etag)
        raise HttpError(
            409, "Superseded", f"{source.key} was overwritten since run {state.run_id} began; its run is {newer}"
        )


async def retry_run(flow: Flow, run_id: str, given: Any = None) -> dict[str, Any]:
    """Retry a FAILED run from where it failed; `given` is the request's own settings (unchecked)."""
    from bailian_flow.pipeline.protocol.intake import settings_update

    current = await load(flow, run_id)
    if current is None:
        raise HttpError(404, "NotFound", f"run {run_id} does not exist")
    state = current.state
    # A batch run's settings are a batch's (endpoint, window, ...): checked as such, on the run loaded once.
    settings = request_settings(flow, given, kind=state.kind)
    if state.stage != "failed":
        raise HttpError(409, "Conflict", f"only FAILED runs can be retried; {run_id} is {state.public()['stage']}")
    resume = _resume_stage(state)
    if resume is None:
        raise HttpError(409, "Conflict", f"run {run_id} has no source to retry from")
    updates: dict[str, Any] = {"attempt": state.attempt + 1, "error": None, "claims": {}, "redrives": 0}
    # A kind may keep what the failed attempt finished (a batch run its answered lines) unless new settings came.
    keeping = kinds.spec_of(state.kind).hook("retry_keeping")
    kept = keeping(state) if keeping is not None and given is None else None
    if kept is not None:
        resume, extra = kept
        updates.update(extra)
    info = await flow.store.head(state.source.key) if state.source.key else None
    _refuse_superseded(state, info.etag if info else None)
    if resume == "requested" and state.source.key:
        # The user may have fixed the sidecar or metadata: read the settings again.
        try:
            found = info.metadata if info else {}
            updates.update(await settings_update(flow, state.kind, state.source.key, found, settings))
        except SettingsError as exc:
            raise HttpError(400, "InvalidSettings", exc.reason) from None
    if resume in ("requested", "file-ready"):
        updates.update(job_id=None, job_name=None, job_status=None, finetuned_output=None, job_deleted=False)
        # The run's jobs are found by the files they train on (service-contract.md#C3): the files of every attempt
        # stay known, and the next attempt's first claim sets aside the jobs already made from a file it reuses.
        trained = [file_id for file_id in (state.file_id,) if file_id and file_id not in state.earlier_file_ids]
        updates.update(earlier_file_ids=[*state.earlier_file_ids, *trained], earlier_jobs=[])
    if resume == "requested":
        # The files were deleted when the job ended: the retry uploads the dataset again.
        updates.update(file_id=None, validation_file_id=None, files_deleted=[])
    updates.update(
        deployed_model=None,
        deploy_suffix=None,
        deployment_status=None,
        import_job_id=None,
        deployment_expires_at=None,
        undeployed_at=None,
    )
    # `commit` puts the revived run back on the timer's list.
    written = await commit(flow, current, resume, f"retry #{state.attempt + 1} from {resume}", **updates)
    if written is None:
        raise HttpError(409, "Conflict", f"run {run_id} changed meanwhile; try again")
    return written.public()


async def batch_callback(flow: Flow, run_id: str, token: str) -> dict[str, Any]:
    """A batch finished (says the caller): read the run's batches from Bailian now, not at the next tick."""
    from bailian_flow.pipeline.protocol.callbacks import callback_matches
    from bailian_flow.pipeline.protocol.steps import POLLING, advance

    secret = flow.settings.callback_secret
    if secret is None or not callback_matches(secret.get_secret_value(), run_id, token):
        # The same answer as for a run that does not exist: a forger learns nothing.
        raise HttpError(404, "NotFound", "no such callback")
    current = await load(flow, run_id)
    if current is None:
        raise HttpError(404, "NotFound", "no such callback")
    await advance(flow, run_id, POLLING)
    return {"received": True}


async def callback(flow: Flow, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Inbound notice that something a run waits on may have changed: poll that run now, not at the next tick."""
    from bailian_flow.pipeline.protocol.steps import POLLING, advance

    if "run_id" not in body:
        raise HttpError(400, "InvalidParameter", "callback body needs a run_id")
    run_id = inputs.run_id(body["run_id"])
    state = await advance(flow, run_id, POLLING)
    if state is None:
        raise HttpError(404, "NotFound", f"run {run_id} does not exist")
    return {"kind": kind, "run": state.public()}
