"""The SDK tests check the vendor SDKs against the emulator's default behaviour, whatever profile the suite runs
in ($BAILIAN_FLOW_EMULATOR_PROFILE); tests/emulator/test_sdk_strict.py reads the strict answers with them."""

from __future__ import annotations

import pytest
from emulator_support import Emulator


@pytest.fixture(autouse=True)
def default_profile(emulator_reset: Emulator) -> Emulator:
    emulator_reset.configure({"profile": "default"})
    return emulator_reset
