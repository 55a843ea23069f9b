"""What `doctor` finds: one `Check` per assumption, each naming the service-contract row it tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["HOLDS", "UNKNOWN", "VIOLATED", "Check", "Report", "Status"]

Status = Literal["holds", "violated", "unknown"]
HOLDS: Status = "holds"
VIOLATED: Status = "violated"
UNKNOWN: Status = "unknown"

# Evidence quoting the service is cut here: a table row, not a dump.
MAX_EVIDENCE = 400


@dataclass(frozen=True)
class Check:
    """One assumption: `row` is its docs/service-contract.md id (C2), `status` what the account showed."""

    row: str
    assumption: str
    status: Status
    evidence: str

    def __post_init__(self) -> None:
        if len(self.evidence) > MAX_EVIDENCE:
            object.__setattr__(self, "evidence", self.evidence[: MAX_EVIDENCE - 1] + "…")


@dataclass
class Report:
    region: str
    native_url: str
    workspace: str | None
    probe: bool
    checks: list[Check] = field(default_factory=list)

    def add(self, row: str, assumption: str, status: Status, evidence: str) -> None:
        self.checks.append(Check(row, assumption, status, evidence))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {HOLDS: 0, VIOLATED: 0, UNKNOWN: 0}
        for check in self.checks:
            counts[check.status] += 1
        return counts

    @property
    def violated(self) -> bool:
        return any(check.status == VIOLATED for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "native_url": self.native_url,
            "workspace": self.workspace,
            "probe": self.probe,
            "summary": self.counts(),
            "checks": [asdict(check) for check in self.checks],
        }

    def plain_lines(self) -> list[str]:
        """The table for a pipe: one line per check, columns separated by two spaces, no colour."""
        width = max((len(check.row) for check in self.checks), default=3)
        lines = [self.heading()]
        for check in self.checks:
            lines.append(f"{check.row:<{width}}  {check.status:<8}  {check.assumption}: {check.evidence}")
        lines.append(self.summary())
        return lines

    def heading(self) -> str:
        workspace = self.workspace or "(default workspace)"
        mode = "read-only and probes" if self.probe else "read-only"
        return f"bailian-flow doctor: region {self.region}, {self.native_url}, {workspace}, {mode}"

    def summary(self) -> str:
        counts = self.counts()
        tally = f"{counts[HOLDS]} hold, {counts[VIOLATED]} violated, {counts[UNKNOWN]} unknown"
        return f"{tally} (rows: docs/service-contract.md)"
