"""`bailian-flow runs list|show|watch|results|cancel|retry|teardown`: runs through the webhook function's REST API
(and, for a batch run's answers, the bucket)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from bailian_flow.cli._api import Api
from bailian_flow.cli._app import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    json_option,
    make_console,
    print_json,
    verbose_option,
)
from bailian_flow.cli._results import batch_results, download
from bailian_flow.cli._run_view import TERMINAL, error_line, show_run, source_text, stage_text
from bailian_flow.cli._settings import parse_settings, with_settings_options
from bailian_flow.pipeline.protocol.kinds import REGISTERED

PAGE = 200  # the API's largest page


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def runs() -> None:
    """List, inspect, follow and act on runs (through the REST API of the webhook function).

    The API's URL and token come from BAILIAN_FLOW_API_URL and BAILIAN_FLOW_API_TOKEN, or from the profile
    that `bailian-flow dev` writes, so locally nothing needs configuring.

    \b
    Examples:
      bailian-flow runs list --stage FAILED
      bailian-flow runs show rb028b771c98d0a5
      bailian-flow runs watch
    """


@runs.command("list")
@click.option("--stage", help="Only runs in this stage (e.g. training, FAILED, DONE).")
@click.option("--kind", type=click.Choice(sorted(REGISTERED)), help="Only runs of this kind.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="At most this many runs.")
@json_option
@verbose_option
def list_runs(stage: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """Runs, newest first.

    \b
    Example:
      bailian-flow runs list --kind fine-tune --stage training --json
    """
    api = Api.from_profile()
    found: list[dict[str, Any]] = []
    after: str | None = None
    while len(found) < limit:
        page = api.get("/runs", limit=min(PAGE, limit), after=after, stage=stage, kind=kind)
        found.extend(page.get("runs") or [])
        after = page.get("next")
        if not after:
            break
    found = found[:limit]
    if as_json:
        print_json({"runs": found})
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("RUN", "KIND", "STAGE", "SOURCE", "CREATED", "ERROR"):
        table.add_column(column, overflow="fold", no_wrap=column != "ERROR")
    for run in found:
        table.add_row(
            run.get("run_id", ""),
            run.get("kind", ""),
            stage_text(run.get("stage", "")),
            source_text(run),
            (run.get("created_at") or "")[:19].replace("T", " "),
            error_line(run.get("error")),
        )
    console = make_console()
    if found:
        console.print(table)
    else:
        console.print("no runs" + (" matching the filters" if stage or kind else " yet"))


@runs.command("show")
@click.argument("run_id")
@json_option
@verbose_option
def show(run_id: str, as_json: bool) -> None:
    """A run: its stage, resources, error (object, line, field) and timeline with each stage's duration; estimate
    and actual (tokens, epochs, cost), a training run's step, epoch and losses, the deployed model with a call
    example, and what the run still owns on Bailian; for a batch run also its shards, where its answers are, how
    many requests completed and failed, and its tokens.

    \b
    Example:
      bailian-flow runs show rb028b771c98d0a5
    """
    detail = Api.from_profile().get(f"/runs/{_safe(run_id)}")
    results = batch_results(detail.get("run") or {})
    if as_json:
        print_json({**detail, "results": results} if results is not None else detail)
    else:
        show_run(make_console(), detail)


@runs.command("account")
@json_option
@verbose_option
def account(as_json: bool) -> None:
    """The account's quotas in use (fine-tune jobs x/20, files x/100 and GB, parallel batches), pending batch
    requests per model, and the waiting line: each waiting run's place and what it waits for.

    \b
    Example:
      bailian-flow runs account --json
    """
    answer = Api.from_profile().get("/account")
    if as_json:
        print_json(answer)
        return
    from bailian_flow.cli._facts import show_account

    show_account(make_console(), answer)


def _safe(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


@runs.command("watch")
@click.argument("run_id", required=False)
@click.option(
    "--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True, help="Seconds between polls."
)
@click.option("--timeout", type=click.FloatRange(0), default=0, help="Give up after this many seconds (0: never).")
@json_option
@verbose_option
def watch(run_id: str | None, interval: float, timeout: float, as_json: bool) -> int:
    """Follow a run (or every unfinished run) live, one line per new stage, until it ends.

    Exits 0 when the run ends DONE, 1 when it ends FAILED or CANCELED. With --json, one JSON object per line.

    \b
    Examples:
      bailian-flow runs watch rb028b771c98d0a5
      bailian-flow runs watch --json | jq .stage
    """
    api = Api.from_profile()
    console = make_console()
    started = time.monotonic()
    seen: dict[str, int] = {}
    outcomes: dict[str, str] = {}
    while True:
        targets = [run_id] if run_id else [run["run_id"] for run in _unfinished(api, seen)]
        for rid in targets:
            detail = api.get(f"/runs/{_safe(rid)}")
            history = detail.get("history") or []
            for entry in history[seen.get(rid, 0) :]:
                _print_entry(console, rid, entry, as_json, multiple=run_id is None)
            seen[rid] = len(history)
            if detail["run"].get("stage") in TERMINAL:
                outcomes[rid] = detail["run"]["stage"]
        if targets and all(rid in outcomes for rid in targets):
            break
        if timeout and time.monotonic() - started > timeout:
            click.echo(f"bailian-flow: still running after {timeout:g} s", err=True)
            return EXIT_INVALID
        time.sleep(interval)
    if run_id and not as_json:
        run = api.get(f"/runs/{_safe(run_id)}")["run"]
        if run.get("error"):
            console.print(f"[red]error[/red] {error_line(run['error'])}")
        elif run.get("deployed_model"):
            console.print(f"deployed model {run['deployed_model']}")
    return EXIT_OK if all(stage == "DONE" for stage in outcomes.values()) else EXIT_INVALID


def _unfinished(api: Api, seen: dict[str, int]) -> list[dict[str, Any]]:
    """The runs worth following: unfinished ones, plus those seen unfinished before (to print how they ended)."""
    listed = api.get("/runs", limit=PAGE).get("runs") or []
    return [run for run in listed if run.get("stage") not in TERMINAL or run["run_id"] in seen]


def _print_entry(console: Any, run_id: str, entry: dict[str, Any], as_json: bool, *, multiple: bool) -> None:
    if as_json:
        import json

        click.echo(json.dumps({"run_id": run_id, **entry}, ensure_ascii=False))
        return
    prefix = f"{run_id}  " if multiple else ""
    at = (entry.get("at") or "")[11:19]
    console.print(f"{prefix}{at}  #{entry.get('seq', 0):<3} {entry.get('stage', ''):<19} {entry.get('changed', '')}")


def _act(run_id: str, action: str, body: dict[str, Any] | None, as_json: bool) -> None:
    answer = Api.from_profile().post(f"/runs/{_safe(run_id)}/{action}", body)
    if as_json:
        print_json(answer)
        return
    run = answer.get("run") or {}
    message = answer.get("message") or ""
    make_console().print(f"{run.get('run_id', run_id)}  {stage_text(run.get('stage', '?'))}  {message}".rstrip())


@runs.command("cancel")
@click.argument("run_id")
@json_option
@verbose_option
def cancel(run_id: str, as_json: bool) -> None:
    """Cancel a run (and its Bailian job). Exit 1 if it has already ended, 3 if it does not exist.

    \b
    Example:
      bailian-flow runs cancel rb028b771c98d0a5
    """
    _act(run_id, "cancel", None, as_json)


@runs.command("retry")
@click.argument("run_id")
@with_settings_options
@json_option
@verbose_option
def retry(run_id: str, settings_file: Path | None, assignments: tuple[str, ...], as_json: bool) -> None:
    """Retry a FAILED run from where it failed, optionally with changed settings.

    \b
    Example:
      bailian-flow runs retry rb028b771c98d0a5 --set hyper_parameters.n_epochs=1
    """
    settings = parse_settings(settings_file, assignments)
    _act(run_id, "retry", {"settings": settings} if settings else None, as_json)


@runs.command("teardown")
@click.argument("run_id")
@json_option
@verbose_option
def teardown(run_id: str, as_json: bool) -> None:
    """Undeploy a DONE run's model (its deployment), keeping the run and its history.

    \b
    Example:
      bailian-flow runs teardown rb028b771c98d0a5
    """
    _act(run_id, "teardown", None, as_json)


@runs.command("results")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the files into [default: ./<run id>].",
)
@json_option
@verbose_option
def results(run_id: str, directory: Path | None, as_json: bool) -> int:
    """Download a finished batch run's answers: output.jsonl, errors.jsonl and summary.json, from the bucket the
    run's input is in (the local stack's, or BAILIAN_FLOW_BUCKET at BAILIAN_FLOW_OSS_ENDPOINT, as `put` uses).

    Exit 1 if the run is not a batch run or has no results yet, 3 if it does not exist.

    \b
    Examples:
      bailian-flow runs results r4be545e630dfce9
      bailian-flow runs results r4be545e630dfce9 -o answers/ --json
    """
    from bailian_flow.local.profile import load_profile

    run = Api.from_profile().get(f"/runs/{_safe(run_id)}")["run"]
    found = batch_results(run)
    if found is None:
        raise CliError(f"run {run_id} is a {run.get('kind')} run: only batch runs have results", EXIT_INVALID)
    if not found["ready"]:
        raise CliError(f"run {run_id} has no results yet (it is {run.get('stage')})", EXIT_INVALID)
    profile, _ = load_profile()
    bucket = found["bucket"] or profile.bucket
    target = directory if directory is not None else Path(str(run.get("run_id") or run_id))
    target.mkdir(parents=True, exist_ok=True)
    written = [download(profile, bucket, key, target / key.rsplit("/", 1)[-1]) for key in found["files"]]
    if as_json:
        print_json({"run_id": run.get("run_id"), "bucket": bucket, "prefix": found["prefix"], "files": written})
        return EXIT_OK
    console = make_console()
    for item in written:
        console.print(f"{item['path']}  {item['bytes']:,} bytes  (oss://{bucket}/{item['key']})")
    console.print(f"{found['completed']} completed, {found['failed']} failed")
    return EXIT_OK
