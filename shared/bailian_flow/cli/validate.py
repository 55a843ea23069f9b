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
from bailian_flow.cli._facts import rate_text

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
@click.option(
    "--freeze-vit",
    type=click.Choice(["true", "false"]),
    default=None,
    help="A Qwen-VL fine-tune's freeze_vit hyper-parameter (token billing needs it true).",
)
@json_option
@verbose_option
def validate(
    path: Path,
    kind: str,
    model: str | None,
    epochs: int,
    max_errors: int | None,
    no_tokens: bool,
    freeze_vit: str | None,
    as_json: bool,
) -> int:
    """Validate a dataset offline and estimate what training on it costs. Exit 1 when it is invalid.

    --json prints {"ok", "records", "tokens", "cost", "errors": [{"line", "field", "message"}], ...}.

    \b
    Examples:
      bailian-flow validate train.jsonl --model qwen3-14b --epochs 3
      bailian-flow validate prefs.jsonl --type dpo --json
      bailian-flow validate requests.jsonl --type batch --model qwen-plus
      bailian-flow validate wan-i2v-training-dataset.zip --model wan2.6-i2v   # a Wan or packed VL zip
      bailian-flow validate images.jsonl --model qwen3-vl-8b-instruct --freeze-vit false
      bailian-flow validate qwen-flash.deploy.yaml                            # a deployment marker
    """
    from bailian_flow.validate import MAX_REPORTED_ERRORS

    cap = max_errors or MAX_REPORTED_ERRORS
    media = None if kind == "batch" else _media(path, model, epochs, freeze_vit, cap)
    if media is not None:
        # Zips, VL JSONL and deploy markers: the service counts media tokens, so rates stand in for a cost.
        if as_json:
            print_json(media)
        else:
            _print(path, media)
        return EXIT_OK if media["ok"] else EXIT_INVALID
    counter = None if no_tokens else _counter()
    if kind == "batch":
        report = asyncio.run(_batch(path, model, counter))
    else:
        report = _training(path, kind, model or _default_model(), epochs, cap, counter)
        report["warnings"][:0] = _size_warnings(path)
    if not no_tokens and counter is None:
        report["notes"].append("no token counts: install the tokenizer with pip install 'bailian-flow[tokens]'")
    if as_json:
        print_json(report)
    else:
        _print(path, report)
    return EXIT_OK if report["ok"] else EXIT_INVALID


def _size_warnings(path: Path) -> list[str]:
    """A training file over the file API's per-file limit cannot be uploaded whole (from its size, before reading)."""
    from bailian_flow.validate import FILE_API_MAX_BYTES

    size = path.stat().st_size
    if size <= FILE_API_MAX_BYTES:
        return []
    return [
        f"{path.name} is {size:,} bytes, more than the {FILE_API_MAX_BYTES // (1 << 20)} MiB a file may have on "
        "Bailian's file API (模型定制文件管理服务, 使用限制: 单个文件大小最大为300MB): "
        "the upload will be refused; split it"
    ]


def _media(path: Path, model: str | None, epochs: int, freeze_vit: str | None, cap: int) -> dict[str, Any] | None:
    """The report for a dataset zip, a VL JSONL or a deploy marker; None for a text dataset."""
    from bailian_flow.estimate import media_estimate
    from bailian_flow.validate._media_entry import validate_path
    from bailian_flow.validate._vl import freeze_vit_warning

    if path.name.endswith(".deploy.yaml"):
        return _deploy_marker(path)
    hyper_parameters: dict[str, Any] = {"n_epochs": epochs}
    if freeze_vit is not None:
        hyper_parameters["freeze_vit"] = freeze_vit == "true"
    report = validate_path(path, model=model, hyper_parameters=hyper_parameters, max_errors=cap)
    warning = freeze_vit_warning(model, hyper_parameters)
    if report is not None and warning and warning not in report["warnings"]:
        report["warnings"].append(warning)
    if report is not None and report["ok"] and model:
        estimate = media_estimate(model, hyper_parameters, report["records"], "lora")
        report["training_rate"], report["deployment_rate"] = estimate["training_rate"], estimate["deployment_rate"]

    return report


def _deploy_marker(path: Path) -> dict[str, Any]:
    from bailian_flow.estimate import deployment_estimate
    from bailian_flow.validate._deploy import parse_deploy_marker
    from bailian_flow.validate._errors import DatasetError

    report: dict[str, Any] = {"ok": True, "type": "deploy", "records": 0, "tokens": None, "cost": None}
    report.update(errors=[], warnings=[], notes=[])
    try:
        spec = parse_deploy_marker(path.read_bytes(), object_name=path.name)
    except DatasetError as exc:
        report.update(ok=False, errors=[{**problem.brief(), "object": problem.object_name} for problem in exc.errors])
        return report
    report.update(
        model=spec.model,
        plan=spec.plan,
        deployment_rate=deployment_estimate(spec.model, spec.plan or "")["deployment_rate"],
    )
    if spec.ttl_seconds is None:
        report["notes"].append("no ttl: the deployment bills until it is torn down (POST /runs/{id}/teardown)")
    return report


def _default_model() -> str:
    import os

    return os.environ.get("BAILIAN_FLOW_DEFAULT_MODEL") or "qwen3-8b"


def _counter() -> Any:
    from bailian_flow.estimate import QwenTokens, TokenizerMissing

    try:
        return QwenTokens.load()
    except TokenizerMissing:
        return None


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
        where_in = error.get("object") or path.name
        console.print(f"[red]{escape(where_in)}[/red] {escape(where)}: {escape(error['message'])}")
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
    for name in ("training_rate", "deployment_rate"):
        rate = report.get(name)
        if rate:
            console.print(f"  rate:   {escape(rate_text(rate))}")
    for line in report["warnings"] + report["notes"]:
        console.print(f"  [yellow]note[/yellow]: {escape(line)}")
