"""Bad input never gets a traceback: mutated archives (flipped, cut, inserted bytes) pass or raise DatasetError."""

from __future__ import annotations

import random
from pathlib import Path

from zip_helpers import build_zip, wan_entries

from bailian_flow.validate import DatasetError
from bailian_flow.validate._zip import validate_zip_file

SEED = 7
CASES = 400


async def test_mutated_archives_fail_only_with_dataset_errors(tmp_path: Path) -> None:
    originals = [
        build_zip(wan_entries()),
        build_zip(wan_entries(), zip64=True),
        build_zip(wan_entries(kf2v=True, folders=True)),
    ]
    rng = random.Random(SEED)
    path = tmp_path / "mutated.zip"
    outcomes = {"valid": 0, "refused": 0}
    for _ in range(CASES):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.6:
                data[at] = rng.randrange(256)
            elif roll < 0.8:
                del data[at : at + rng.randint(1, 40)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 8))
        path.write_bytes(bytes(data))
        try:
            await validate_zip_file(path)
            outcomes["valid"] += 1
        except DatasetError:
            outcomes["refused"] += 1
    # Most mutations break something the checks see; a few land in bytes no check reads (the PNG pixels).
    assert outcomes["refused"] > CASES // 2 and sum(outcomes.values()) == CASES
