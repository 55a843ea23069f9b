"""`bailian-flow doctor`: check, against a real account, the service behaviours the pipeline relies on.

Each check names its row of docs/service-contract.md and ends holds, violated or unknown, with its evidence.
Read-only unless `probe` is set; the probes undo what they make (see `_probe`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ._read import Unusable, read_only
from ._report import HOLDS, UNKNOWN, VIOLATED, Check, Report
from ._uses import Uses, uses_of

if TYPE_CHECKING:
    from bailian_flow.client import BailianClient

__all__ = ["HOLDS", "UNKNOWN", "VIOLATED", "Check", "Report", "Unusable", "Uses", "diagnose", "uses_of"]

# The real test batch takes minutes; past this the probe cancels it and says so.
DEFAULT_BATCH_TIMEOUT = 900.0


async def diagnose(
    client: BailianClient, uses: Uses, *, probe: bool = False, batch_timeout: float = DEFAULT_BATCH_TIMEOUT
) -> Report:
    report = Report(client.region, client.endpoints.native, client.workspace, probe)
    try:
        await _checks(client, report, uses, probe, batch_timeout)
    except Unusable as exc:
        raise Unusable(client.scrub(str(exc))) from None
    # Evidence quotes the service; the client scrubs its errors already, and this makes sure of it for all of it.
    report.checks = [replace(check, evidence=client.scrub(check.evidence)) for check in report.checks]
    return report


async def _checks(client: BailianClient, report: Report, uses: Uses, probe: bool, batch_timeout: float) -> None:
    await read_only(client, report, uses)
    if probe:
        from ._probe import probe as run_probes

        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(2)
        await run_probes(client, report, stamp, batch_timeout)
    else:
        needs = "not checked: run with --probe"
        report.add("C41", "a create shows in its list at once", UNKNOWN, needs)
        report.add("C37", "test batch end to end (host, shapes, list, download)", UNKNOWN, needs)
