"""The root command, lazy loading of subcommands, exit codes and the one-line error policy."""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from importlib import metadata
from typing import Any

import click

EXIT_OK = 0
EXIT_INVALID = 1  # invalid input, a failed check, a run that ended FAILED or CANCELED
EXIT_USAGE = 2  # click's own code for usage errors
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4  # the API or a service cannot be reached, or the configuration is missing or malformed
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 invalid input or failed run, 2 usage, 3 not found, 4 unreachable or not configured, "
    "130 interrupted."
)

# name -> "module:attribute"; imported when the command is used (or when `--help` lists them).
COMMANDS: dict[str, str] = {
    "runs": "bailian_flow.cli.runs:runs",
    "put": "bailian_flow.cli.put:put",
    "validate": "bailian_flow.cli.validate:validate",
    "dev": "bailian_flow.cli.local:dev",
    "demo": "bailian_flow.cli.local:demo",
    "emulator": "bailian_flow.cli.local:emulator",
    "files": "bailian_flow.cli.files:files",
    "responses": "bailian_flow.cli.responses:responses",
    "doctor": "bailian_flow.cli.doctor:doctor",
}


class CliError(click.ClickException):
    """A failure the user can act on: one line, and the exit code scripts rely on."""

    def __init__(self, message: str, exit_code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class, per subclass

    def show(self, file: Any = None) -> None:
        click.echo(f"bailian-flow: {self.format_message()}", err=True)


_verbosity = 0


def verbosity() -> int:
    return _verbosity


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    global _verbosity
    _verbosity = max(_verbosity, value or 0)


verbose_option = click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    is_eager=True,
    callback=_set_verbose,
    help="More logging; tracebacks on errors (-vv: debug logging).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")


def make_console() -> Any:
    """A rich console (imported on use) that prints piped output unfolded."""
    from rich.console import Console

    # Piped output has no terminal width; rich would assume 80 columns and fold every run id and command.
    width = None if sys.stdout.isatty() else 240
    return Console(highlight=False, soft_wrap=False, width=width)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, so start-up costs only what the command needs."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attribute = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attribute)
            return command
        return super().get_command(ctx, cmd_name)


def _version() -> str:
    try:
        return metadata.version("bailian-flow")
    except metadata.PackageNotFoundError:
        return "unknown"


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(_version(), "--version", prog_name="bailian-flow", message="%(prog)s %(version)s")
@verbose_option
def root() -> None:
    """Run and watch the Bailian model lifecycle: put datasets, validate them offline, follow runs, run locally.

    \b
    Examples:
      bailian-flow dev                       # the local stack; writes the profile other commands use
      bailian-flow validate train.jsonl --model qwen3-8b --epochs 3
      bailian-flow put train.jsonl --set model=qwen3-14b
      bailian-flow runs list --stage FAILED
    """


def run_cli(argv: list[str]) -> int:
    try:
        # Without standalone mode click returns the command's value, or the code of a click.exceptions.Exit.
        result = root.main(argv, prog_name="bailian-flow", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("bailian-flow: interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `bailian-flow runs list | head`
        return EXIT_OK
    except Exception as exc:
        if _verbosity:
            traceback.print_exc()
        else:
            click.echo(f"bailian-flow: unexpected {type(exc).__name__}: {exc} (run with -v for details)", err=True)
        return EXIT_INVALID
    finally:
        sys.stdout.flush()
    return result if isinstance(result, int) else EXIT_OK
