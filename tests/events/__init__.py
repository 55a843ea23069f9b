"""Golden FC event payloads, shaped after the reference events in fc-runtime.md.

Tests import `load_event` from here (`tests/` is on sys.path through its conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).parent


def load_event(name: str) -> bytes:
    """The raw bytes of `<name>.json`, exactly as FC would hand them to a handler."""
    return (EVENTS_DIR / f"{name}.json").read_bytes()


def load_event_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(load_event(name))
    return loaded


def event_names() -> list[str]:
    return sorted(path.stem for path in EVENTS_DIR.glob("*.json"))
