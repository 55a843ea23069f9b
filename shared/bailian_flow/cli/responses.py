"""`bailian-flow responses show|items|delete ID`: stored responses on Bailian, through the client.

The OpenAI-compatible `/responses` API (bailian-api.md §6; seed: "Response Management": retrieve, list input items,
delete). Talks to `DASHSCOPE_BASE_URL` with `DASHSCOPE_API_KEY`, or to the emulator of a running `bailian-flow dev`.
Exit codes as every command: 0 ok, 1 the service refused, 3 no such response, 4 unreachable or not configured.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import click

from bailian_flow.cli._app import (
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    json_option,
    make_console,
    print_json,
    verbose_option,
)

T = TypeVar("T")
TEXT_WIDTH = 100  # characters of a text part shown in a table; --json has them whole


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def responses() -> None:
    """Stored responses (the compatible /responses API): show one, list its input items, delete it.

    \b
    Examples:
      bailian-flow responses show resp_0123abcd
      bailian-flow responses items resp_0123abcd --order asc --json
      bailian-flow responses delete resp_0123abcd
    """


@responses.command("show")
@click.argument("response_id")
@json_option
@verbose_option
def show(response_id: str, as_json: bool) -> int:
    """Show one stored response: status, model, usage and its output text.

    \b
    Example:
      bailian-flow responses show resp_0123abcd --json
    """
    found = _call(response_id, lambda client: client.responses.get(response_id))
    body = found.model_dump(mode="json", exclude_none=True)
    if as_json:
        print_json(body)
        return EXIT_OK
    from rich.table import Table

    table = Table(show_header=False, box=None)
    created = body.get("created_at")
    when = dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat(timespec="seconds") if created else "-"
    usage = body.get("usage") or {}
    rows = [
        ("id", body["id"]),
        ("status", body.get("status") or "-"),
        ("model", body.get("model") or "-"),
        ("created", when),
        ("tokens", _usage_line(usage)),
        ("output", _clip(_output_text(body.get("output") or []))),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/bold]", _escape(value))
    make_console().print(table)
    return EXIT_OK


@responses.command("items")
@click.argument("response_id")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True, help="Item order.")
@click.option("--limit", type=click.IntRange(1, 100), default=100, show_default=True, help="Items fetched per page.")
@json_option
@verbose_option
def items(response_id: str, order: str, limit: int, as_json: bool) -> int:
    """List the input items a stored response was created from (every page).

    \b
    Example:
      bailian-flow responses items resp_0123abcd --order desc
    """
    direction: Literal["asc", "desc"] = "asc" if order == "asc" else "desc"

    async def collect(client: Any) -> list[Any]:
        return [item async for item in client.responses.input_items(response_id, order=direction, limit=limit)]

    found = _call(response_id, collect)
    rows = [item.model_dump(mode="json", exclude_none=True) for item in found]
    if as_json:
        print_json({"response_id": response_id, "data": rows})
        return EXIT_OK
    from rich.table import Table

    table = Table("id", "type", "role", "content")
    for row in rows:
        table.add_row(*(_escape(row.get(key) or "-") for key in ("id", "type", "role")), _escape(_clip(_text(row))))
    console = make_console()
    console.print(table)
    console.print(f"{len(rows)} item(s)")
    return EXIT_OK


@responses.command("delete")
@click.argument("response_id")
@json_option
@verbose_option
def delete(response_id: str, as_json: bool) -> int:
    """Delete a stored response (exit 3 when there is none by that id).

    \b
    Example:
      bailian-flow responses delete resp_0123abcd
    """
    done = _call(response_id, lambda client: client.responses.delete(response_id))
    if as_json:
        print_json(done.model_dump(mode="json"))
    else:
        click.echo(f"deleted {done.id}")
    return EXIT_OK


def _call(response_id: str, operation: Callable[[Any], Awaitable[T]]) -> T:
    """Run one client call against the configured service; every failure becomes one line and its exit code."""
    from bailian_flow.cli.files import _use_dev_emulator

    _use_dev_emulator()
    if not os.environ.get("DASHSCOPE_API_KEY"):
        raise CliError(
            "DASHSCOPE_API_KEY is not set (start `bailian-flow dev`, or set it and DASHSCOPE_BASE_URL)",
            EXIT_UNREACHABLE,
        )

    async def run() -> T:
        from bailian_flow.client import BailianClient

        async with BailianClient() as client:
            return await operation(client)

    from bailian_flow.client.errors import APIConnectionError, BailianError, NotFoundError

    try:
        return asyncio.run(run())
    except NotFoundError:
        raise CliError(f"no stored response {response_id!r}", EXIT_NOT_FOUND) from None
    except APIConnectionError as exc:
        raise CliError(f"cannot reach Bailian: {exc}", EXIT_UNREACHABLE) from None
    except BailianError as exc:
        raise CliError(f"Bailian refused: {exc}", EXIT_INVALID) from None


def _usage_line(usage: dict[str, Any]) -> str:
    if not usage:
        return "-"
    parts = [f"{key.removesuffix('_tokens')} {value:,}" for key, value in usage.items() if isinstance(value, int)]
    return ", ".join(parts) or "-"


def _output_text(output: list[dict[str, Any]]) -> str:
    return " ".join(_text(item) for item in output).strip()


def _text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("text")).strip()


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_WIDTH else text[: TEXT_WIDTH - 1] + "…"


def _escape(value: Any) -> str:
    from rich.markup import escape

    return escape(str(value))
