"""How `runs show` and `runs account` print what the REST API's `facts` and `GET /account` say (the status page's
panels, in a terminal)."""

from __future__ import annotations

from typing import Any


def _money(cost: dict[str, Any] | None) -> str:
    if not cost or cost.get("amount") is None:
        return "-"
    return f"{float(cost['amount']):,.4f} {cost.get('currency') or ''}".strip()


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def rate_text(rate: dict[str, Any]) -> str:
    """A training or deployment rate, as `validate` and `runs show` print it."""
    return (
        f"{rate['input_per_1k_tokens']} / {rate['output_per_1k_tokens']} {rate['currency']} per 1K input / output "
        f"tokens ({rate['basis']})"
    )


def gigabytes(value: Any) -> str:
    return f"{value / 1e9:.2f} GB" if isinstance(value, int) else "?"


def show_facts(console: Any, facts: dict[str, Any]) -> None:
    """Estimate next to actual, training progress, a batch run's shards, the deployed model, what the run owns."""
    from rich.table import Table

    costs = facts.get("costs")
    if costs:
        estimate, actual = costs.get("estimate") or {}, costs.get("actual") or {}
        table = Table(box=None, header_style="bold", title="estimate and actual", title_justify="left")
        for column in ("", "ESTIMATE", "ACTUAL"):
            table.add_column(column, justify="right" if column else "left")
        table.add_row("tokens (dataset)", _count(estimate.get("tokens")), "")
        table.add_row("epochs", _count(estimate.get("epochs")), "")
        table.add_row("tokens trained", _count(estimate.get("trained_tokens")), _count(actual.get("trained_tokens")))
        table.add_row("cost", _money(estimate.get("cost")), _money(actual.get("cost")))
        console.print(table)
    progress = facts.get("progress")
    if progress:
        if progress.get("error"):
            console.print(f"  progress  {progress['error']}")
        else:
            line = f"step {_count(progress.get('step'))}/{_count(progress.get('total_steps'))}"
            if progress.get("epoch") is not None:
                line += f", epoch {progress['epoch']}/{progress.get('epochs') or '?'}"
            if progress.get("loss") is not None:
                line += f", loss {progress['loss']:.4f}"
            if progress.get("eval_loss") is not None:
                line += f", validation loss {progress['eval_loss']:.4f}"
            console.print(f"  progress  {line}")
    shards = facts.get("shards")
    if shards:
        totals = shards.get("totals") or {}
        table = Table(box=None, header_style="bold", title="shards", title_justify="left")
        for column in ("#", "MODEL", "GEN", "STATUS", "LINES", "DONE", "FAILED", "RESUBMITTED"):
            table.add_column(column)
        for row in shards.get("rows") or []:
            table.add_row(
                str(row.get("index")),
                str(row.get("model")),
                str(row.get("generation")),
                str(row.get("status")),
                _count(row.get("lines")),
                _count(row.get("completed")),
                _count(row.get("failed")),
                _count(row.get("resubmitted")),
            )
        table.add_row(
            "all", "", "", "", *(_count(totals.get(name)) for name in ("lines", "completed", "failed", "resubmitted"))
        )
        console.print(table)
        costs = facts.get("batch_costs") or {}
        spent = ", ".join(_money(cost) for cost in costs.get("cost") or []) or "-"
        tokens_in, tokens_out = _count(costs.get("input_tokens")), _count(costs.get("output_tokens"))
        console.print(f"  tokens    {tokens_in} in, {tokens_out} out; cost {spent}")
    deployment = facts.get("deployment")
    if deployment:
        console.print(f"  call      model {deployment['model']} at {deployment.get('base_url')}")
        console.print(deployment.get("curl", ""), markup=False, highlight=False)
    # What the run still holds on Bailian (issue #17): after its end, only what it keeps on purpose.
    owns = facts.get("owns") or []
    listed = "; ".join(f"{item['resource']} {item['id']} ({item['what']})" for item in owns)
    console.print("  owns      " + (listed or "nothing on Bailian"))


def show_account(console: Any, account: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", title="quotas", title_justify="left")
    for column in ("QUOTA", "USED", "LIMIT", "WAITING", ""):
        table.add_column(column)
    for name, use in (account.get("quotas") or {}).items():
        size = ""
        if use.get("bytes_limit") is not None:
            size = f"{gigabytes(use.get('bytes_used'))} of {gigabytes(use.get('bytes_limit'))}"
        used = use.get("used")
        table.add_row(name, "?" if used is None else str(used), str(use.get("limit")), str(use.get("waiting")), size)
    console.print(table)
    pending = account.get("pending_requests") or {}
    if pending:
        console.print("pending requests  " + ", ".join(f"{model} {lines:,}" for model, lines in pending.items()))
    line = account.get("line") or []
    if line:
        table = Table(box=None, header_style="bold", title="waiting line", title_justify="left")
        for column in ("QUOTA", "PLACE", "RUN", "KIND", "SOURCE", "WAITS FOR"):
            table.add_column(column)
        for entry in line:
            waits = entry.get("waits_for") or {}
            why = waits.get("quota") or entry.get("quota")
            if waits.get("used") is not None:
                why = f"{why} ({waits['used']}/{waits.get('limit')} when it met it)"
            table.add_row(
                entry.get("quota"),
                str(entry.get("place")),
                entry.get("run_id"),
                entry.get("kind") or "",
                entry.get("source") or "",
                why,
            )
        console.print(table)
    console.print(f"counted by the timer at {account.get('counted_at') or 'no tick yet'}")
