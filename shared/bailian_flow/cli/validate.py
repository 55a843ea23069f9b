"""`bailian-flow validate PATH`: a dataset checked offline, in flat memory, before it costs anything."""

from __future__ import annotations

from pathlib import Path

import click

from bailian_flow.cli._app import EXIT_INVALID, EXIT_OK, json_option, print_json, verbose_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--type", "kind", type=click.Choice(["sft", "dpo", "cpt"]), default="sft", show_default=True)
@json_option
@verbose_option
def validate(path: Path, kind: str, as_json: bool) -> int:
    """Validate a dataset offline. Exit 1 when it is invalid.

    \b
    Example:
      bailian-flow validate train.jsonl --type sft
    """
    from bailian_flow.validate import DatasetError, validate_file

    try:
        stats = validate_file(path, kind)  # type: ignore[arg-type]
    except DatasetError as exc:
        if as_json:
            print_json({"ok": False, "errors": [exc.to_dict()]})
        else:
            click.echo(str(exc))
        return EXIT_INVALID
    if as_json:
        print_json({"ok": True, **stats.to_dict()})
    else:
        click.echo(f"{path}: {stats.records} records, valid")
    return EXIT_OK
