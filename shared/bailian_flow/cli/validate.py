"""`bailian-flow validate PATH`: a dataset checked offline, in flat memory, before it costs anything.

Every problem up to a cap (line, field, message), record counts, Qwen token counts, and the training cost (tokens ×
epochs × the model's unit price); for a batch input, the shard plan and the input cost at the batch price.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from bailian_flow.cli._app import EXIT_INVALID, EXIT_OK, json_option, make_console, print_json, verbose_option

KINDS = ("sft", "dpo", "cpt", "batch")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--type", "kind", type=click.Choice(KINDS), default="sft", show_default=True, help="What the file is.")
@click.option(
    "--model", help="Base model (batch: replaces every line's body.model) [default: BAILIAN_FLOW_DEFAULT_MODEL]."
)
@click.option("--epochs", type=click.IntRange(1, 1000), default=1, show_default=True, help="Training epochs.")
@click.option(
    "--max-errors", type=click.IntRange(1, 10_000), default=None, help="Stop after this many problems [default: 100]."
)
@click.option("--no-tokens", is_flag=True, help="Skip token counting (and so the cost).")
@json_option
@verbose_option
def validate(
    path: Path, kind: str, model: str | None, epochs: int, max_errors: int | None, no_tokens: bool, as_json: bool
) -> int:
    """Validate a dataset offline and estimate what training on it costs. Exit 1 when it is invalid.

    --json prints {"ok", "records", "tokens", "cost", "errors": [{"line", "field", "message"}], ...}.

    \b
    Examples:
      bailian-flow validate train.jsonl --model qwen3-14b --epochs 3
      bailian-flow validate prefs.jsonl --type dpo --json
      bailian-flow validate requests.jsonl --type batch --model qwen-plus
    """
    from bailian_flow.validate import MAX_REPORTED_ERRORS

    cap = max_errors or MAX_REPORTED_ERRORS
    counter = None if no_tokens else _counter()
    if kind == "batch":
        report = asyncio.run(_batch(path, model, counter))
    else:
        report = _training(path, kind, model or _default_model(), epochs, cap, counter)
    if not no_tokens and counter is None:
        report["notes"].append("no token counts: install the tokenizer with pip install 'bailian-flow[tokens]'")
    if as_json:
        print_json(report)
    else:
        _print(path, report)
    return EXIT_OK if report["ok"] else EXIT_INVALID


def _default_model() -> str:
    import os

    return os.environ.get("BAILIAN_FLOW_DEFAULT_MODEL") or "qwen3-8b"


def _counter() -> Any:
    from bailian_flow.estimate import QwenTokens, TokenizerMissing

    try:
        return QwenTokens.load()
    except TokenizerMissing:
        return None


def _over_file_limit(path: Path) -> str | None:
    """The per-file limit Bailian documents, the one a run enforces before uploading (service-contract.md#C14)."""
    from bailian_flow.client.limits import max_file_bytes

    limit = max_file_bytes("fine-tune", path.name)
    size = path.stat().st_size
    if limit is None or size <= limit:
        return None
    return f"the file is {size} bytes; Bailian takes at most {limit} ({limit >> 20} MB) per fine-tune file: a run fails"


def _training(path: Path, kind: str, model: str, epochs: int, cap: int, counter: Any) -> dict[str, Any]:
    from bailian_flow.estimate import training_cost
    from bailian_flow.validate import DatasetError, DatasetValidator, feed_file

    tokens = 0

    def count(record: Any) -> None:
        nonlocal tokens
        tokens += counter.record_tokens(record, kind)

    validator = DatasetValidator(
        kind,  # type: ignore[arg-type]
        object_name=path.name,
        max_errors=cap,
        on_record=count if counter is not None else None,
    )
    errors: list[dict[str, Any]] = []
    warnings: list[str] = []
    try:
        stats = feed_file(validator, path)
        warnings = list(stats.warnings)
    except DatasetError as exc:
        errors = [error.brief() for error in exc.errors]
    report: dict[str, Any] = {
        "ok": not errors,
        "type": kind,
        "model": model,
        "epochs": epochs,
        "lines": validator.lines,
        "records": validator.records,
        "tokens": tokens if counter is not None else None,
        "cost": None,
        "errors": errors,
        "truncated": len(errors) >= cap,
        "warnings": warnings,
        "notes": [],
    }
    too_large = _over_file_limit(path)
    if too_large:
        report["warnings"].append(too_large)
    if counter is not None:
        cost = training_cost(model, tokens, epochs)
        report["cost"] = cost.to_dict() if cost else None
        if cost is None:
            report["notes"].append(f"no training price for {model} in the price table: no cost estimate")
        elif errors:
            report["notes"].append("tokens and cost count the valid records only")
    return report


async def _batch(path: Path, model: str | None, counter: Any) -> dict[str, Any]:
    import json

    from bailian_flow.config import Settings
    from bailian_flow.estimate import batch_cost
    from bailian_flow.pipeline.kinds.batch.batch_lines import iter_lines, plan_shards
    from bailian_flow.pipeline.kinds.batch.batch_settings import BatchSettings
    from bailian_flow.store import FileStore
    from bailian_flow.validate import DatasetError

    settings = Settings()
    batch_settings = BatchSettings(model=model)
    store = FileStore(path.parent)
    report: dict[str, Any] = {"ok": True, "type": "batch", "model": model, "records": 0, "tokens": None}
    report.update(cost=None, shards=[], errors=[], warnings=[], notes=[])
    try:
        plan = await plan_shards(
            store,
            path.name,
            batch_settings,
            max_lines=settings.batch_shard_lines,
            max_bytes=settings.batch_shard_bytes,
            etag=None,
        )
    except DatasetError as exc:
        report.update(ok=False, errors=[error.brief() for error in exc.errors])
        return report
    finally:
        await store.close()
    report["records"] = plan.total
    report["shards"] = [
        {"model": s.model, "lines": s.lines, "bytes": s.bytes, "first_line": s.first_line} for s in plan.shards
    ]
    if counter is None:
        return report
    by_model: dict[str, int] = {}
    store = FileStore(path.parent)
    try:
        async for _, _, raw in iter_lines(store, path.name):
            if raw.strip():
                body = json.loads(raw).get("body") or {}
                name = model or str(body.get("model"))
                text = "".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
                by_model[name] = by_model.get(name, 0) + counter.count(text or str(body.get("input", "")))
    finally:
        await store.close()
    report["tokens"] = sum(by_model.values())
    costs = {name: batch_cost(name, tokens) for name, tokens in by_model.items()}
    priced = [cost for cost in costs.values() if cost is not None]
    if priced and len({cost.currency for cost in priced}) == 1:
        basis = "; ".join(cost.basis for cost in priced)
        report["cost"] = {
            "amount": round(sum(c.amount for c in priced), 6),
            "currency": priced[0].currency,
            "basis": basis,
        }
    for name, cost in costs.items():
        if cost is None:
            report["notes"].append(f"no batch price for {name} in the price table")
    return report


def _print(path: Path, report: dict[str, Any]) -> None:
    from rich.markup import escape

    console = make_console()
    for error in report["errors"]:
        where = f"line {error['line']}" if error["line"] is not None else "file"
        if error["field"]:
            where += f", {error['field']}"
        console.print(f"[red]{escape(path.name)}[/red] {escape(where)}: {escape(error['message'])}")
    if report.get("truncated"):
        console.print(f"… stopped after {len(report['errors'])} problems (--max-errors)")
    verdict = "[green]valid[/green]" if report["ok"] else f"[red]invalid ({len(report['errors'])} problem(s))[/red]"
    console.print(f"{escape(str(path))}: {verdict}, {report['records']:,} record(s)")
    for shard in report.get("shards") or []:
        console.print(f"  shard: {escape(shard['model'])}, {shard['lines']:,} line(s), {shard['bytes']:,} bytes")
    if report["tokens"] is not None:
        console.print(f"  tokens: {report['tokens']:,} (Qwen tokenizer)")
    if report["cost"]:
        cost = report["cost"]
        console.print(f"  cost:   {cost['amount']:.4f} {cost['currency']}  ({cost['basis']})")
    for line in report["warnings"] + report["notes"]:
        console.print(f"  [yellow]note[/yellow]: {escape(line)}")
