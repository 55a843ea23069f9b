"""The run log: create-only, whole-state entries per run on an object store (see `_log` for the protocol)."""

from __future__ import annotations

from bailian_flow.runlog._log import RunEntry, RunLog, RunLogError, is_run_id, run_id_for

__all__ = ["RunEntry", "RunLog", "RunLogError", "is_run_id", "run_id_for"]
