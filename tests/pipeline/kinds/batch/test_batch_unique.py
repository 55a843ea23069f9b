"""custom_id uniqueness over more ids than one in-memory run holds (runs spilled to disk, then merged)."""

from __future__ import annotations

import pytest

from bailian_flow.pipeline.kinds.batch import batch_unique
from bailian_flow.pipeline.kinds.batch.batch_unique import IdDigests, id_digest


@pytest.fixture(autouse=True)
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_unique, "RUN_SIZE", 64)


def test_repeats_are_found_across_spilled_runs() -> None:
    ids = IdDigests()
    for number in range(1000):
        ids.add(f"id-{number}")
    ids.add("id-3")  # in the first run, repeated in the last
    ids.add("id-999")
    ids.add("id-999")

    assert ids.repeated() == {id_digest("id-3"), id_digest("id-999")}
    ids.close()


def test_unique_ids_repeat_nothing() -> None:
    ids = IdDigests()
    for number in range(1000):
        ids.add(f"id-{number}")

    assert ids.repeated() == set()
    ids.close()
