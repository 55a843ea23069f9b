"""Emulated time: real time scaled by ``--time-scale`` plus explicit advances from the control API."""

from __future__ import annotations

import time


class Clock:
    """Emulated epoch seconds.

    Resources keep emulated timestamps and advance their lifecycle lazily from :meth:`now`, so a test
    running with ``scale=100`` or calling :meth:`advance` sees a one-minute job finish within a second.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._t0_wall = time.time()
        self._t0_mono = time.monotonic()
        self._advanced = 0.0

    def elapsed(self) -> float:
        """Emulated seconds since the clock started."""
        return (time.monotonic() - self._t0_mono) * self.scale + self._advanced

    def now(self) -> float:
        """Emulated epoch seconds."""
        return self._t0_wall + self.elapsed()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._advanced += seconds
