"""How a run reads in the terminal: its one-line error, its stage, its source, and `runs show`'s whole view."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bailian_flow.cli._facts import rate_text
from bailian_flow.cli._results import batch_results, show_results

TERMINAL = frozenset({"DONE", "FAILED", "CANCELED"})
STAGE_STYLE = {"DONE": "green", "FAILED": "red", "CANCELED": "yellow"}


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def timeline(history: list[dict[str, Any]], stage: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each entry with how long the run stayed in it (the last one: until now, unless the run has ended)."""
    now = now or datetime.now(timezone.utc)
    steps: list[dict[str, Any]] = []
    for index, entry in enumerate(history):
        started = _parse_time(entry.get("at"))
        if index + 1 < len(history):
            ended = _parse_time(history[index + 1].get("at"))
        else:
            ended = started if stage in TERMINAL else now
        seconds = (ended - started).total_seconds() if started and ended else 0.0
        steps.append({**entry, "seconds": max(seconds, 0.0)})
    return steps


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def error_line(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    reason = str(error.get("reason", ""))
    where = error.get("object") or ""
    if where and reason.startswith(where):  # the validator's reasons already say where
        return reason
    if error.get("line") is not None:
        where += f" line {error['line']}"
    if error.get("field"):
        where += f", field {error['field']}"
    return f"{where}: {reason}" if where else reason


def stage_text(stage: str) -> str:
    style = STAGE_STYLE.get(stage)
    return f"[{style}]{stage}[/{style}]" if style else stage


def source_text(run: dict[str, Any]) -> str:
    source = run.get("source") or {}
    return str(source.get("key") or source.get("file_id") or "")


def show_run(console: Any, detail: dict[str, Any]) -> None:
    from rich.table import Table

    run = detail["run"]
    stage = run.get("stage", "")
    console.print(f"[bold]{run.get('run_id')}[/bold]  {run.get('kind', '')}  {stage_text(stage)}")
    console.print(f"  source    {source_text(run)}")
    resources = [
        ("file", run.get("file_id")),
        ("job", run.get("job_id") or run.get("job_name")),
        ("model", run.get("finetuned_output") or run.get("imported_model")),
        ("deployed", run.get("deployed_model")),
    ]
    for label, value in resources:
        if value:
            console.print(f"  {label:<9} {value}")
    estimate = run.get("estimate") or {}
    if estimate.get("records") is not None:  # a deploy run has no dataset: its rate alone
        tokens = estimate.get("tokens")
        line = f"{estimate['records']:,} records"
        if tokens is not None:
            line += f", {tokens:,} tokens × {estimate.get('epochs')} epoch(s)"
        cost = estimate.get("cost")
        line += f" ≈ {cost['amount']:.4f} {cost['currency']}" if cost else " (no price for this model)"
        console.print(f"  estimate  {line}")
    for name in ("training_rate", "deployment_rate"):
        if estimate.get(name):
            console.print(f"  rate      {rate_text(estimate[name])}", markup=False, highlight=False)
    if (run.get("usage") or {}).get("tokens") is not None:
        console.print(f"  usage     {run['usage']['tokens']:,} tokens billed by Bailian")
    if run.get("place_in_line") is not None and run.get("waiting"):
        console.print(f"  waiting   for {run['waiting'].get('quota')}, place {run['place_in_line']} in line")
    from bailian_flow.cli._facts import show_facts

    show_facts(console, detail.get("facts") or {})
    results = batch_results(run)
    if results is not None:
        show_results(console, run, results)
    if run.get("error"):
        console.print(f"  [red]error[/red]     {error_line(run['error'])}")
    for problem in (run.get("error") or {}).get("errors") or []:
        console.print(
            f"            line {problem.get('line')}, {problem.get('field') or '-'}: {problem.get('message')}"
        )
    steps = timeline(detail.get("history") or [], stage)
    longest = max((step["seconds"] for step in steps), default=0.0) or 1.0
    table = Table(box=None, header_style="bold", title="timeline", title_justify="left")
    for column in ("#", "STAGE", "AT", "TOOK", ""):
        table.add_column(column)
    for step in steps:
        bar = "█" * max(1, round(24 * step["seconds"] / longest)) if step["seconds"] else ""
        table.add_row(
            str(step.get("seq")),
            step.get("stage", ""),
            (step.get("at") or "")[11:19],
            _duration(step["seconds"]),
            f"[cyan]{bar}[/cyan]",
        )
    console.print(table)
