"""Under `bailian-flow dev`, Bailian's batch finish callback reaches the stack's own webhook with nothing set by hand:
a batch run whose timer never fires still finishes."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import isolated_env, start_dev


def _batch_input(count: int) -> bytes:
    lines = (
        {
            "custom_id": f"req-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
        }
        for n in range(1, count + 1)
    )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_a_batch_run_under_dev_finishes_on_its_callback_without_a_timer_tick(tmp_path: Path) -> None:
    source = tmp_path / "questions.jsonl"
    source.write_bytes(_batch_input(5))
    # The timer fires once an hour (the last --timer-interval wins): only the callback can end the batch's wait.
    dev = start_dev(isolated_env(tmp_path), "--ephemeral", "--time-scale", "100", "--timer-interval", "3600")
    try:
        assert "timer every 3600 s (--timer-interval)" in dev.banner
        put = dev.cli("put", str(source), "--key", "batches/dev/questions.jsonl")
        assert put.returncode == 0, put.stderr
        run_id = put.stdout.strip()

        watched = dev.cli("runs", "watch", run_id, "--interval", "0.2", "--timeout", "60")

        assert watched.returncode == 0, watched.stdout + watched.stderr
        shown = dev.cli_json("runs", "show", run_id)
        assert shown["run"]["stage"] == "DONE"
        assert sum(shard["completed"] for shard in shown["run"]["batch"]["shards"]) == 5
        assert not [line for line in dev.errors if "Traceback" in line]
    finally:
        assert dev.stop() == 0
