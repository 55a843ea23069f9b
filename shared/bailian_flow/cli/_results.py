"""A batch run's answers for `runs show` and `runs results`: where they are, what they hold, and their download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bailian_flow.cli._app import CliError

RESULT_FILES = ("output.jsonl", "errors.jsonl", "summary.json")
BATCHES_PREFIX, RESULTS_PREFIX = "batches/", "results/"


def batch_results(run: dict[str, Any]) -> dict[str, Any] | None:
    """Where a batch run's answers are and what they hold, from its state (None for other runs).

    Counted as the run's summary.json counts them: every shard collected (a resubmitted shard's lines count once,
    in the generation that answered them). The prefix is read off a collected part's key, which the pipeline
    wrote under the results prefix it was configured with; before any part, the default layout
    (`results/<input path>/<run_id>/`).
    """
    batch = run.get("batch")
    if run.get("kind") != "batch" or not isinstance(batch, dict):
        return None
    shards = [shard for shard in batch.get("shards") or [] if isinstance(shard, dict)]
    collected = [shard for shard in shards if shard.get("part_key")]
    prefix = None
    for shard in collected:
        # A part's key, or (a run of one shard) the output it wrote itself.
        head, found, _ = str(shard["part_key"]).rpartition("/output.jsonl" if shard.get("direct") else "/_parts/")
        if found:
            prefix = f"{head}/"
            break
    if prefix is None:
        path = str((run.get("source") or {}).get("key") or "").removeprefix(BATCHES_PREFIX).removesuffix(".jsonl")
        prefix = f"{RESULTS_PREFIX}{path}/{run.get('run_id')}/"
    ready = bool(batch.get("results_at")) and run.get("stage") == "DONE"
    return {
        "bucket": (run.get("source") or {}).get("bucket"),
        "prefix": prefix,
        "ready": ready,
        "files": [prefix + name for name in RESULT_FILES] if ready else [],
        "total": batch.get("total"),
        "completed": sum(int(shard.get("completed") or 0) for shard in collected),
        "failed": sum(int(shard.get("failed") or 0) for shard in collected),
        "shards": len(shards),
        "input_tokens": sum(int(shard.get("input_tokens") or 0) for shard in collected),
        "output_tokens": sum(int(shard.get("output_tokens") or 0) for shard in collected),
    }


def show_results(console: Any, run: dict[str, Any], results: dict[str, Any]) -> None:
    where = f"oss://{results['bucket']}/{results['prefix']}" if results["bucket"] else results["prefix"]
    if results["ready"]:
        console.print(f"  results   {where}  ({', '.join(RESULT_FILES)})")
        console.print(f"            bailian-flow runs results {run.get('run_id')}")
    else:
        console.print(f"  results   not yet (they land in {where})")
    failed = results["failed"]
    console.print(
        f"  requests  {results['total']} in {results['shards']} shard(s): {results['completed']} completed, "
        + (f"[red]{failed} failed[/red]" if failed else "0 failed")
    )
    # Its tokens and cost are the facts' line above (`_facts.py`): said once.


def download(profile: Any, bucket: str, key: str, path: Path) -> dict[str, Any]:
    """One object to a file, whole or not at all: written to a side file, renamed once complete."""
    import alibabacloud_oss_v2 as oss

    from bailian_flow.cli._app import EXIT_NOT_FOUND, EXIT_UNREACHABLE
    from bailian_flow.cli.put import oss_client, oss_reason, status_of

    partial = path.with_name(f".{path.name}.part")
    try:
        oss_client(profile).get_object_to_file(oss.GetObjectRequest(bucket=bucket, key=key), str(partial))
    except oss.exceptions.BaseError as exc:
        partial.unlink(missing_ok=True)
        if status_of(exc) == 404:
            raise CliError(f"oss://{bucket}/{key} is missing (deleted since the run ended?)", EXIT_NOT_FOUND) from None
        raise CliError(f"download of oss://{bucket}/{key} failed: {oss_reason(exc)}", EXIT_UNREACHABLE) from None
    partial.replace(path)
    return {"name": path.name, "key": key, "path": str(path), "bytes": path.stat().st_size}
