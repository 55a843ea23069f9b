"""The webhook function's REST API over runs, and inbound callbacks.

Authenticated with `BAILIAN_FLOW_API_TOKEN` as a bearer token (compared in constant time). Without a configured
token every route but /health answers 503: an API left open by a missing setting is worse than one that is off.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from typing import Any

from bailian_flow.client.errors import APIStatusError, NotFoundError
from bailian_flow.pipeline import reconcile
from bailian_flow.pipeline.runtime import Flow
from bailian_flow.pipeline.settings import SettingsError, resolve_settings
from bailian_flow.pipeline.state import RUN_KINDS, RunState, Stage
from bailian_flow.pipeline.transitions import commit, load
from bailian_flow.runlog import run_id_for
from bailian_flow.store import bare_etag

log = logging.getLogger("bailian_flow.pipeline")

_RUN_PATH = re.compile(r"^/runs/(?P<run_id>[A-Za-z0-9_-]+)(?P<action>/cancel|/retry|/teardown)?/?$")
_BATCH_CALLBACK = re.compile(r"^/callbacks/batch/(?P<run_id>[A-Za-z0-9_-]{1,64})/(?P<token>[0-9a-f]{1,128})/?$")
MAX_LIST = 200


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _response(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "isBase64Encoded": False,
        "body": json.dumps(body, ensure_ascii=False),
    }


def _authorized(flow: Flow, authorization: str | None) -> None:
    token = flow.settings.api_token
    if token is None:
        raise HttpError(503, "NotConfigured", "the API token (BAILIAN_FLOW_API_TOKEN) is not configured")
    expected = f"Bearer {token.get_secret_value()}".encode()
    if not authorization or not hmac.compare_digest(authorization.encode(), expected):
        raise HttpError(401, "Unauthorized", "missing or wrong bearer token")


async def handle(flow: Flow, raw: bytes) -> dict[str, Any]:
    from bailian_flow.fc import InvalidEvent, parse_http_event

    try:
        event = parse_http_event(raw)
    except InvalidEvent as exc:
        return _response(400, {"error": {"code": "InvalidEvent", "message": str(exc)}})
    method = event.method.upper()
    path = event.path or "/"
    try:
        if path.rstrip("/") in ("", "/health") and method == "GET":
            return _response(200, {"status": "ok"})
        callback = _BATCH_CALLBACK.match(path)
        if callback and method == "POST":
            # Bailian calls this without our token: the path's HMAC is the credential, the body is ignored.
            return _response(200, await batch_callback(flow, callback["run_id"], callback["token"]))
        _authorized(flow, event.header("authorization"))
        body = _json_body(event.decoded_body()) if method == "POST" else {}
        status, payload = await _route(flow, method, path, body, event.query)
        return _response(status, payload)
    except HttpError as exc:
        return _response(exc.status, {"error": {"code": exc.code, "message": exc.message}})


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HttpError(400, "InvalidJSON", f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HttpError(400, "InvalidJSON", "request body must be a JSON object")
    return body


async def _route(flow: Flow, method: str, path: str, body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
    if path.rstrip("/") == "/runs":
        if method == "GET":
            runs, next_cursor = await list_runs(flow, query)
            return 200, {"runs": runs, "next": next_cursor}
        if method == "POST":
            return await start_run(flow, body)
    match = _RUN_PATH.match(path)
    if match:
        run_id, action = match["run_id"], match["action"]
        if action is None and method == "GET":
            return 200, await show_run(flow, run_id)
        if action == "/cancel" and method == "POST":
            return 200, {"run": await cancel_run(flow, run_id)}
        if action == "/retry" and method == "POST":
            return 202, {"run": await retry_run(flow, run_id, body.get("settings"))}
        if action == "/teardown" and method == "POST":
            return 200, {"run": await teardown_run(flow, run_id)}
    if path.startswith("/callbacks/") and method == "POST":
        return 200, await callback(flow, path.removeprefix("/callbacks/"), body)
    raise HttpError(404, "NotFound", f"no route for {method} {path}")


async def list_runs(flow: Flow, query: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; `next` is the `after` value of the following page (None on the last)."""
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise HttpError(400, "InvalidParameter", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIST:
        raise HttpError(400, "InvalidParameter", f"limit must be between 1 and {MAX_LIST}")
    run_ids, next_cursor = await flow.runs.recent(limit=limit, after=query.get("after"))
    loaded = await asyncio.gather(*(load(flow, run_id) for run_id in run_ids))
    wanted_stage = query.get("stage")
    wanted_kind = query.get("kind")
    if wanted_kind is not None and wanted_kind not in RUN_KINDS:
        raise HttpError(400, "InvalidParameter", f"kind must be one of {', '.join(sorted(RUN_KINDS))}")
    runs = [current.state.public() for current in loaded if current is not None]
    if wanted_stage:
        runs = [run for run in runs if run["stage"] == wanted_stage]
    if wanted_kind:
        runs = [run for run in runs if run["kind"] == wanted_kind]
    return runs, next_cursor


async def show_run(flow: Flow, run_id: str) -> dict[str, Any]:
    history = await flow.runs.history(run_id)
    if not history:
        raise HttpError(404, "NotFound", f"run {run_id} does not exist")
    latest = RunState.model_validate({**history[-1].state, "seq": history[-1].seq})
    return {
        "run": latest.public(),
        "history": [
            {"seq": entry.seq, "stage": entry.stage, "changed": entry.changed, "at": entry.at} for entry in history
        ],
    }


async def start_run(flow: Flow, body: dict[str, Any]) -> tuple[int, Any]:
    from bailian_flow.pipeline.intake import open_run_for_file, open_run_for_object

    explicit = body.get("settings")
    if explicit is not None and not isinstance(explicit, dict):
        raise HttpError(400, "InvalidParameter", "settings must be an object")
    try:
        if explicit:
            # The request's own settings are the caller's to fix now (400, no run); a bad sidecar or metadata
            # on the object is the dataset's problem and fails its run instead.
            resolve_settings(flow.settings.defaults, explicit=explicit)
        if isinstance(body.get("oss_key"), str):
            key = body["oss_key"]
            state, created = await open_run_for_object(
                flow, flow.settings.bucket, key, None, explicit=explicit, first_stage="requested"
            )
            if state is None:
                raise HttpError(404, "NotFound", f"object {key} does not exist in {flow.settings.bucket}")
        elif isinstance(body.get("file_id"), str):
            state, created = await open_run_for_file(flow, body["file_id"], explicit=explicit)
        else:
            raise HttpError(400, "InvalidParameter", "give either oss_key or file_id")
    except SettingsError as exc:
        raise HttpError(400, "InvalidSettings", exc.reason) from None
    return (202 if created else 200), {"run": state.public(), "created": created}


async def cancel_run(flow: Flow, run_id: str) -> dict[str, Any]:
    for _ in range(5):
        current = await load(flow, run_id)
        if current is None:
            raise HttpError(404, "NotFound", f"run {run_id} does not exist")
        state = current.state
        if state.terminal:
            raise HttpError(409, "Conflict", f"run {run_id} is already {state.public()['stage']}")
        if state.batch is not None:
            from bailian_flow.pipeline.stages.batch import cancel_batches

            await cancel_batches(flow, state.batch)
        job_id = state.job_id
        if job_id is None and state.job_name:
            found = await reconcile.find_job(flow, state.job_name)
            job_id = found.job_id if found else None
        if job_id is not None:
            try:
                await flow.client.fine_tunes.cancel(job_id)
            except NotFoundError:
                pass
            except APIStatusError as exc:
                # A job that already ended cannot be canceled; the run still stops here.
                log.info("run %s: cancel of %s refused: %s", run_id, job_id, exc.code)
        written = await commit(flow, current, "canceled", "canceled through the API", job_id=job_id)
        if written is not None:
            return written.public()
    raise HttpError(409, "Conflict", f"run {run_id} kept changing; try again")


async def teardown_run(flow: Flow, run_id: str) -> dict[str, Any]:
    """Undeploy a DONE run's model; asking again once it is undeployed answers the same run."""
    from bailian_flow.pipeline.lifecycle import can_tear_down, tear_down

    for _ in range(5):
        current = await load(flow, run_id)
        if current is None:
            raise HttpError(404, "NotFound", f"run {run_id} does not exist")
        if current.state.undeployed_at:
            return current.state.public()
        refusal = can_tear_down(current.state)
        if refusal is not None:
            raise HttpError(409, "Conflict", refusal)
        written = await tear_down(flow, current, "torn down through the API")
        if written is not None:
            return written.public()
    raise HttpError(409, "Conflict", f"run {run_id} kept changing; try again")


def _resume_stage(state: RunState) -> Stage | None:
    if state.finetuned_output or state.imported_model:
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


async def retry_run(flow: Flow, run_id: str, settings: Any = None) -> dict[str, Any]:
    from bailian_flow.pipeline.intake import batch_settings_for, settings_for

    current = await load(flow, run_id)
    if current is None:
        raise HttpError(404, "NotFound", f"run {run_id} does not exist")
    state = current.state
    if state.stage != "failed":
        raise HttpError(409, "Conflict", f"only FAILED runs can be retried; {run_id} is {state.public()['stage']}")
    resume = _resume_stage(state)
    if resume is None:
        raise HttpError(409, "Conflict", f"run {run_id} has no source to retry from")
    updates: dict[str, Any] = {"attempt": state.attempt + 1, "error": None, "claims": {}, "redrives": 0}
    info = await flow.store.head(state.source.key) if state.source.key else None
    _refuse_superseded(state, info.etag if info else None)
    if resume == "requested" and state.source.key:
        # The user may have fixed the sidecar or metadata: read the settings again.
        try:
            found = info.metadata if info else {}
            if state.kind == "batch":
                # A batch run starts over: a new plan, shards named after the new attempt.
                updates["batch"] = await batch_settings_for(flow, state.source.key, found, settings)
            else:
                updates["settings"] = await settings_for(flow, state.source.key, found, settings)
        except SettingsError as exc:
            raise HttpError(400, "InvalidSettings", exc.reason) from None
    if resume in ("requested", "file-ready"):
        updates.update(job_id=None, job_name=None, job_status=None, finetuned_output=None, job_deleted=False)
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
    from bailian_flow.pipeline.batch_state import callback_matches
    from bailian_flow.pipeline.steps import POLLING, advance

    secret = flow.settings.callback_secret
    if secret is None or not callback_matches(secret.get_secret_value(), run_id, token):
        # The same answer as for a run that does not exist: a forger learns nothing.
        raise HttpError(404, "NotFound", "no such callback")
    current = await load(flow, run_id)
    if current is None or current.state.kind != "batch":
        raise HttpError(404, "NotFound", "no such callback")
    await advance(flow, run_id, POLLING)
    return {"received": True}


async def callback(flow: Flow, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Inbound notice that something a run waits on may have changed: poll that run now, not at the next tick."""
    from bailian_flow.pipeline.steps import POLLING, advance

    run_id = body.get("run_id")
    if not isinstance(run_id, str):
        raise HttpError(400, "InvalidParameter", "callback body needs a run_id")
    state = await advance(flow, run_id, POLLING)
    if state is None:
        raise HttpError(404, "NotFound", f"run {run_id} does not exist")
    return {"kind": kind, "run": state.public()}
