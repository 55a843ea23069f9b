"""What one invocation works with: settings, the store, the run log, the Bailian client, the notifier.

Built fresh per invocation (FC instances may be frozen between calls; an aiohttp session must not outlive its
event loop) and closed at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bailian_flow.config import Settings
from bailian_flow.pipeline.protocol.layout import ACTIVE_PREFIX, INDEX_PREFIX

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient
    from bailian_flow.notify import Notifier
    from bailian_flow.runlog import RunLog
    from bailian_flow.store import ObjectStore

# How often a run may be re-announced before it is failed as stuck.
MAX_REDRIVES = 5


@dataclass
class Flow:
    settings: Settings
    store: ObjectStore
    runs: RunLog
    notifier: Notifier
    writer: str
    deadline: float = field(default_factory=lambda: time.monotonic() + 3600.0)
    # Bailian objects the timer already read in bulk this invocation ("<family>:<id>"): a poll step uses them
    # instead of one GET per run.
    seen: dict[str, Any] = field(default_factory=dict)
    # The Bailian client once made (`client`); open_flow closes it.
    bailian: BailianClient | None = None

    @property
    def client(self) -> BailianClient:
        """Made on first use: the REST API's reads never call Bailian, and its modules are a cold start's cost."""
        if self.bailian is None:
            from bailian_flow.client import BailianClient

            settings = self.settings
            self.bailian = BailianClient(
                api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                region=settings.region,
                base_url=settings.base_url,
                workspace=settings.workspace,
            )
        return self.bailian

    @property
    def lease_seconds(self) -> float:
        """How long an intent is held before a re-claim: never shorter than the lists' lag, or a re-claim's look-up
        could miss what the first claim made and create it again (service-contract.md#C41)."""
        return max(self.settings.lease_seconds, self.settings.list_lag_seconds)

    @property
    def redrive_after_seconds(self) -> float:
        return self.settings.redrive_after_seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_z(moment: datetime | None = None, *, timespec: str = "auto") -> str:
    """A UTC moment (now by default) in ISO 8601 with a `Z`: the one spelling of times in a run's state."""
    return (moment or utc_now()).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_iso_z(value: str) -> datetime:
    """A time written by `iso_z` (or any ISO 8601 with an offset); python3.10's fromisoformat refuses the `Z`."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def request_id_of(context: Any) -> str:
    """FC's request id identifies a delivery; a retry of the same async invocation keeps it."""
    value = getattr(context, "request_id", None)
    return str(value) if value else f"local-{uuid.uuid4().hex[:12]}"


def timeout_of(context: Any, default: float = 60.0) -> float:
    function = getattr(context, "function", None)
    timeout = getattr(function, "timeout", None)
    try:
        return float(timeout) if timeout else default
    except (TypeError, ValueError):
        return default


@asynccontextmanager
async def open_flow(context: Any, settings: Settings | None = None) -> AsyncIterator[Flow]:
    # Imported here so that a handler pays only for what it uses.
    from bailian_flow.notify import Notifier
    from bailian_flow.runlog import RunLog
    from bailian_flow.store import open_store

    settings = settings or Settings.from_env()
    started = time.monotonic()
    store = open_store(settings, context)
    flow: Flow | None = None
    try:
        flow = Flow(
            settings=settings,
            store=store,
            runs=RunLog(store, prefix=settings.runs_prefix, active_prefix=ACTIVE_PREFIX, index_prefix=INDEX_PREFIX),
            # Notifications ride on every transition: a slow or dead receiver must cost seconds, not the timeout.
            notifier=Notifier(settings.webhook_url, settings.webhook_secret, timeout=3.0, attempts=2),
            writer=request_id_of(context),
            deadline=started + timeout_of(context),
        )
        yield flow
    finally:
        try:
            if flow is not None and flow.bailian is not None:
                await flow.bailian.close()
        finally:
            await store.close()
