"""Helpers and fixtures of the client tests: the emulator's control API, a client configured from the env.

Fixtures live here, not in a conftest.py, because other test folders import shared helpers by module name and a
second `conftest` module on sys.path would shadow the root one. Test modules import the fixtures they use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bailian_flow.client import BailianClient

SFT_LINE = b'{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'

LIMITERS = [
    "file_upload",
    "file_query",
    "fine_tunes",
    "deployments",
    "custom_models",
    "batches",
    "responses",
    "upload_policy",
    "oss_upload",
]


class Control:
    """`/_emulator/...`: inject faults, script outcomes, read the counters."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.url}/_emulator{path}", json=body) as response,
        ):
            response.raise_for_status()
            return await response.json(content_type=None)

    async def faults(self, *rules: dict[str, Any]) -> None:
        await self._call("POST", "/faults", {"rules": list(rules)})

    async def fault_hits(self) -> list[int]:
        listed = await self._call("GET", "/faults")
        rules = listed["rules"] if isinstance(listed, dict) else listed
        return [rule["hits"] for rule in rules]

    async def state(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = await self._call("GET", "/state")
        return result

    async def script(self, kind: str, outcome: str, count: int = 1) -> None:
        await self._call("POST", "/script", {"kind": kind, "outcome": outcome, "count": count})

    async def advance(self, seconds: float) -> None:
        await self._call("POST", "/clock", {"advance": seconds})


@pytest.fixture(name="control")
def control_fixture(bailian_env: Any) -> Control:
    return Control(bailian_env.url)


@pytest.fixture(name="client")
async def client_fixture(bailian_env: Any) -> AsyncIterator[BailianClient]:
    """A client configured only from the environment, as handlers use it; rate limits off for speed."""
    async with BailianClient(rate_limits=dict.fromkeys(LIMITERS)) as instance:
        yield instance
