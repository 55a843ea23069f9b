"""Process-wide emulator state shared by every resource module.

Resource modules keep their own records (usually in an ``app`` key of their own) and report to this object:
``count_created`` on every creation, ``register_live`` for what exists now, ``add_reset_hook`` to be
cleared by ``POST /_emulator/reset``.
"""

from __future__ import annotations

import logging
import pathlib
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .behaviour import Behaviour
from .clock import Clock

if TYPE_CHECKING:
    from .faults import FaultRule

log = logging.getLogger(__name__)

RESOURCE_KINDS = (
    "fine_tunes",
    "deployments",
    "imports",
    "files",
    "compat_files",
    "batches",
    "responses",
    "oss_objects",
)
SCRIPT_KINDS = ("fine_tune", "deployment", "import", "batch")


class EmulatorState:
    def __init__(
        self,
        data_dir: pathlib.Path,
        clock: Clock | None = None,
        api_key: str | None = None,
        profile: str = "default",
        region: str = "cn",
    ) -> None:
        self.data_dir = data_dir
        self.clock = clock if clock is not None else Clock()
        self.api_key = api_key
        # files.py replaces this with a lookup in its store; the default accepts any id so that fine-tunes
        # can be created while the files module is absent.
        self.file_exists: Callable[[str], bool] = lambda file_id: True
        # The name a file was uploaded under (None: unknown id); files.py and compat_files.py chain their lookups.
        self.file_name: Callable[[str], str | None] = lambda file_id: None
        self.faults: list[FaultRule] = []
        self._created: Counter[str] = Counter()
        self._live: dict[str, Callable[[], int]] = {}
        self._reset_hooks: list[Callable[[], None]] = []
        self._scripts: dict[str, list[str]] = {}
        # The undocumented behaviours (see behaviour.py) and the region; a reset restores the ones started with.
        self.start_profile = profile
        self.behaviour = Behaviour.profile(profile)
        self.start_region = region
        self.region = region

    @property
    def list_lag_seconds(self) -> float:
        """Bailian's list endpoints lag its creates: a resource younger than this (emulated seconds) is not listed."""
        return self.behaviour.list_lag_seconds

    def count_created(self, kind: str) -> None:
        self._created[kind] += 1

    def register_live(self, kind: str, counter: Callable[[], int]) -> None:
        self._live[kind] = counter

    def add_reset_hook(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def listed(self, created: float) -> bool:
        """Whether a resource created at `created` (emulated time) shows in list answers yet."""
        return self.clock.now() - created >= self.list_lag_seconds

    def script(self, kind: str, outcome: str, count: int) -> None:
        """Make the next ``count`` resources of ``kind`` end in ``outcome``."""
        self._scripts.setdefault(kind, []).extend([outcome] * count)

    def scripts(self) -> dict[str, list[str]]:
        return {kind: list(outcomes) for kind, outcomes in self._scripts.items() if outcomes}

    def take_scripted_outcome(self, kind: str) -> str | None:
        outcomes = self._scripts.get(kind)
        if not outcomes:
            return None
        return outcomes.pop(0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        kinds = list(RESOURCE_KINDS) + [k for k in (*self._created, *self._live) if k not in RESOURCE_KINDS]
        live: dict[str, int] = {}
        for kind in kinds:
            counter = self._live.get(kind)
            live[kind] = counter() if counter is not None else 0
        return {"created": {kind: self._created[kind] for kind in kinds}, "live": live}

    def reset(self) -> None:
        for hook in self._reset_hooks:
            hook()
        self._created.clear()
        self._scripts.clear()
        self.behaviour = Behaviour.profile(self.start_profile)
        self.region = self.start_region
        self.faults.clear()
        log.info("emulator state reset")


STATE_KEY = web.AppKey("bailian_flow.emulator.state", EmulatorState)
