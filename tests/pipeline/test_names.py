"""The names a run gives its Bailian resources: deterministic, within Bailian's limits, new per attempt."""

from __future__ import annotations

import re

from bailian_flow.pipeline.protocol import reconcile
from bailian_flow.runlog import run_id_for


def test_deployment_suffixes_fit_bailian_and_change_with_the_attempt() -> None:
    run_id = run_id_for("bucket", "datasets/train.jsonl", "688A7BF4F233DC9C88A80BF985AB0000")
    suffixes = [reconcile.deploy_suffix(run_id, attempt) for attempt in (1, 2, 3)]
    # Bailian: ≤ 8 characters, globally unique; a letter first keeps every segment of the model name a word.
    assert all(re.fullmatch(r"[a-z][a-z0-9]{0,7}", suffix) for suffix in suffixes), suffixes
    assert len(set(suffixes)) == 3
    assert suffixes[0] == reconcile.deploy_suffix(run_id, 1), "deterministic: a retry of the same attempt finds it"
    assert reconcile.deploy_suffix("manual-run_1", 1) != suffixes[0]


def test_job_and_file_names_carry_the_run_and_attempt() -> None:
    assert reconcile.job_name("r0123456789abcde", 2) == "bf-r0123456789abcde-2"
    description = reconcile.file_description("r0123456789abcde", 2, "train")
    assert "r0123456789abcde" in description and "attempt=2" in description
    assert description != reconcile.file_description("r0123456789abcde", 2, "validation")
