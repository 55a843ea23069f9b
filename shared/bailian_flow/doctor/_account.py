"""What the read-only checks share: the account's lists, and the one-line form of a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bailian_flow.client.models.batches import Batch
    from bailian_flow.client.models.deployments import Deployment
    from bailian_flow.client.models.files import FileInfo
    from bailian_flow.client.models.fine_tunes import FineTuneJob

__all__ = ["Account", "Unusable", "said"]


class Unusable(Exception):
    """The account cannot be read at all (key refused, host unreachable): one line, exit 4."""


@dataclass
class Account:
    """What the lists showed; None where a list failed (its row says why)."""

    files: list[FileInfo] | None = None
    jobs: list[FineTuneJob] | None = None
    deployments: list[Deployment] | None = None
    batches: list[Batch] | None = None
    failures: dict[str, str] = field(default_factory=dict)


def said(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
