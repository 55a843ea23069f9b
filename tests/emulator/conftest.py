"""Fixtures of the emulator tests that run against a frozen clock (one emulator per test module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from core_api import Api, frozen_emulator
from emulator_support import Emulator


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with frozen_emulator(tmp_path_factory.mktemp("frozen")) as emulator:
        yield emulator


@pytest.fixture
async def api(frozen: Emulator) -> AsyncIterator[Api]:
    """A reset frozen emulator in the default profile (the emulator's own tests pin the behaviour they test, even
    when $BAILIAN_FLOW_EMULATOR_PROFILE starts every emulator strict); modules that test against the shared
    emulator define their own ``api``."""
    frozen.reset()
    frozen.configure({"profile": "default"})
    async with aiohttp.ClientSession() as session:
        yield Api(session, frozen.url, frozen.api_key)
