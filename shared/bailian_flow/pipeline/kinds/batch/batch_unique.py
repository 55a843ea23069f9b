"""Is every `custom_id` of an input unique? Answered for any number of lines in bounded memory.

Each id becomes an 8-byte digest; digests are kept in sorted runs spilled to temporary files (an external sort),
and the runs' merge yields the digests seen more than once. Only those are then looked at again, by id, so a
digest collision between two different ids never fails a valid input. Memory: one run of `RUN_SIZE` digests.
"""

from __future__ import annotations

import hashlib
import heapq
import tempfile
from array import array
from collections.abc import Iterator
from typing import IO

RUN_SIZE = 200_000
READ_BLOCK = 8 * 8192


def id_digest(custom_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(custom_id.encode(), digest_size=8).digest(), "big")


def _read_run(run: IO[bytes]) -> Iterator[int]:
    run.seek(0)
    while block := run.read(READ_BLOCK):
        yield from array("Q", block)


class IdDigests:
    def __init__(self) -> None:
        self._pending = array("Q")
        self._runs: list[IO[bytes]] = []

    def add(self, custom_id: str) -> None:
        self._pending.append(id_digest(custom_id))
        if len(self._pending) >= RUN_SIZE:
            self._spill()

    def _spill(self) -> None:
        run = tempfile.TemporaryFile(prefix="bf-ids-")  # noqa: SIM115 - kept open until close()
        array("Q", sorted(self._pending)).tofile(run)
        self._runs.append(run)
        self._pending = array("Q")

    def repeated(self, limit: int = 10_000) -> set[int]:
        """Digests added more than once (at most `limit` of them: the first duplicate is all a report needs)."""
        if self._pending:
            self._spill()
        found: set[int] = set()
        previous: int | None = None
        for digest in heapq.merge(*(_read_run(run) for run in self._runs)):
            if digest == previous:
                found.add(digest)
                if len(found) >= limit:
                    break
            previous = digest
        return found

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs.clear()
