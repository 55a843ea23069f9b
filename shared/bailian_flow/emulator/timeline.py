"""Lazily advanced lifecycles: a resource is a list of timed phases read against the emulated clock.

Moto's lesson: async resources advance through declared transitions. Here each transition is a phase with an
emulated start time; reading the status at time ``t`` picks the last phase that has started. Actions such as
cancel or scale cut the future phases and append new ones, so no background task is ever needed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phase:
    start: float
    status: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    phases: list[Phase] = field(default_factory=list)

    @classmethod
    def starting(cls, at: float, *steps: tuple[float, str]) -> Timeline:
        """Consecutive phases; ``steps`` are (offset from ``at``, status) pairs."""
        timeline = cls()
        for offset, status in steps:
            timeline.phases.append(Phase(at + offset, status))
        return timeline

    def current(self, now: float) -> Phase:
        starts = [phase.start for phase in self.phases]
        index = bisect.bisect_right(starts, now) - 1
        return self.phases[max(index, 0)]

    def status(self, now: float) -> str:
        return self.current(now).status

    def started_at(self, status: str) -> float | None:
        for phase in self.phases:
            if phase.status == status:
                return phase.start
        return None

    def cut_and_append(self, now: float, *phases: Phase) -> None:
        """Drop every phase that has not started yet and continue with ``phases``."""
        self.phases = [phase for phase in self.phases if phase.start <= now]
        self.phases.extend(phases)
