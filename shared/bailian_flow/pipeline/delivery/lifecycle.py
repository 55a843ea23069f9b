"""A delivery's end of life: finishing a run (retention, TTL), tearing its deployment down, expiring TTLs.

A DONE run leaves the timer's active list, so a run whose deployment has a TTL is remembered in a separate
index instead: an empty object `ttl/<expiry>-<run_id>`, written before the `done` entry that announces the
expiry (so no such run is ever missing from it). Keys sort by expiry, so a tick lists the index from the start
and stops at the first key not yet due: it reads only what is due, however many deployments wait.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from bailian_flow.client.errors import APIStatusError
from bailian_flow.pipeline.delivery.retention import apply_retention
from bailian_flow.pipeline.protocol.cleanup import undeploy
from bailian_flow.pipeline.protocol.layout import TTL_PREFIX
from bailian_flow.pipeline.protocol.runtime import Flow, iso_z, parse_iso_z, utc_now
from bailian_flow.pipeline.protocol.state import RunState
from bailian_flow.pipeline.protocol.transitions import Current, commit, load

log = logging.getLogger("bailian_flow.pipeline")

_KEY_TIME = "%Y%m%dT%H%M%S.%fZ"
# Stop expiring with this much of the timer's budget left: the tick's polling matters more.
TTL_MARGIN_SECONDS = 15.0


def ttl_key(expires_at: datetime, run_id: str) -> str:
    return f"{TTL_PREFIX}{expires_at.astimezone(timezone.utc).strftime(_KEY_TIME)}-{run_id}"


def _parse_key(key: str) -> tuple[datetime, str] | None:
    stamp, _, run_id = key.removeprefix(TTL_PREFIX).partition("-")
    try:
        return datetime.strptime(stamp, _KEY_TIME).replace(tzinfo=timezone.utc), run_id
    except ValueError:
        return None


def _expiry_of(state: RunState) -> datetime | None:
    value = state.deployment_expires_at
    return parse_iso_z(value) if value else None


async def finish(flow: Flow, current: Current, changed: str, **updates: Any) -> RunState | None:
    """Commit `done`, having applied the run's job retention and scheduled its deployment's TTL."""
    state = current.state.model_copy(update=updates)
    retention = await apply_retention(flow, state)
    if retention.own_job_deleted:
        updates["job_deleted"] = True
    changed += retention.describe(state.settings.job_retention)
    ttl = state.settings.on_success.deployment_ttl
    if ttl and state.deployed_model and not state.undeployed_at:
        expires = utc_now() + timedelta(seconds=ttl)
        await flow.store.put(ttl_key(expires, state.run_id), b"", content_type="text/plain")
        updates["deployment_expires_at"] = iso_z(expires)
        changed += f"; undeploys at {iso_z(expires)} (deployment_ttl {ttl}s)"
    return await commit(flow, current, "done", changed, **updates)


def can_tear_down(state: RunState) -> str | None:
    """Why this run has nothing to undeploy, or None when it has."""
    if state.stage != "done":
        return f"only DONE runs can be torn down; {state.run_id} is {state.public()['stage']}"
    if not state.deployed_model:
        return f"run {state.run_id} deployed nothing"
    return None


class DeleteRefused(Exception):
    """Bailian refused to delete the deployment for now (whether a RUNNING one may be deleted is undocumented,
    service-contract.md#C26): nothing is recorded as undeployed, and the timer tries again every tick."""

    def __init__(self, deployed_model: str, code: str | None, message: str) -> None:
        super().__init__(f"Bailian refused to delete {deployed_model} for now ({code}: {message})")
        self.deployed_model = deployed_model
        self.code = code


async def tear_down(flow: Flow, current: Current, why: str) -> RunState | None:
    """Undeploy a DONE run's model and record it (notification `run.undeployed`); None: lost the race.

    Raises DeleteRefused when Bailian refuses the delete with a definite answer (a 4xx other than 404)."""
    state = current.state
    assert state.deployed_model is not None
    try:
        await undeploy(flow, state.deployed_model)
    except APIStatusError as exc:
        if exc.status is None or exc.status >= 500:
            raise
        raise DeleteRefused(state.deployed_model, exc.code, str(exc.message)) from None
    written = await commit(
        flow,
        current,
        "done",
        f"undeployed {state.deployed_model} ({why})",
        event="run.undeployed",
        undeployed_at=iso_z(),
        deployment_status="DELETING",
    )
    expiry = _expiry_of(state)
    if written is not None and expiry is not None:
        await flow.store.delete(ttl_key(expiry, state.run_id))
    return written


async def retry_tear_down(flow: Flow, current: Current, refused: DeleteRefused) -> RunState | None:
    """A teardown Bailian refused for now: due at once in the TTL index, so that every tick tries it again until the
    delete lands (never recorded as undeployed before); None: lost the race."""
    now = utc_now()
    expiry = _expiry_of(current.state)
    if expiry is not None and expiry <= now:
        return current.state  # already due: the timer is at it
    await flow.store.put(ttl_key(now, current.state.run_id), b"", content_type="text/plain")
    written = await commit(
        flow,
        current,
        "done",
        f"teardown asked; {refused}: the timer tries again every tick until it lands",
        deployment_expires_at=iso_z(now),
    )
    if written is not None and expiry is not None:
        await flow.store.delete(ttl_key(expiry, current.state.run_id))
    return written


async def expire_deployments(flow: Flow) -> list[str]:
    """Undeploy every DONE run whose TTL has passed; returns their run ids. Called by the timer's tick."""
    now = utc_now()
    undeployed: list[str] = []
    async for info in flow.store.list(TTL_PREFIX):
        parsed = _parse_key(info.key)
        if parsed is not None and parsed[0] > now:
            break
        if flow.remaining() < TTL_MARGIN_SECONDS:
            break
        if parsed is not None and await _expire(flow, info.key, parsed[1], now):
            undeployed.append(parsed[1])
    return undeployed


async def _expire(flow: Flow, key: str, run_id: str, now: datetime) -> bool:
    for _ in range(3):
        current = await load(flow, run_id)
        state = current.state if current else None
        expiry = _expiry_of(state) if state else None
        if state is None or expiry is None or ttl_key(expiry, run_id) != key:
            # A marker of a delivery that lost the `done` race (the winner wrote its own), or of a vanished run.
            break
        if expiry > now:
            return False
        if state.undeployed_at or can_tear_down(state) is not None:
            break
        assert current is not None
        try:
            if await tear_down(flow, current, "deployment_ttl expired") is not None:
                return True
        except DeleteRefused as refused:
            # Kept in the index: the next tick tries again (service-contract.md#C26).
            log.info("run %s: %s; the next tick tries again", run_id, refused)
            return False
    await flow.store.delete(key)
    return False
