"""`bailian-flow responses show|items|delete` as a subprocess against the emulator: tables, --json, exit codes."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_command, isolated_env
from emulator_support import Emulator


def _create(emulator: Emulator, text: str) -> dict[str, Any]:
    body = json.dumps({"model": "qwen-plus", "input": text, "store": True}).encode()
    request = urllib.request.Request(
        f"{emulator.url}/compatible-mode/v1/responses",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {emulator.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        created: dict[str, Any] = json.loads(answer.read())
    return created


def _cli(tmp_path: Path, emulator: Emulator | None, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    if emulator is not None:
        env = {"DASHSCOPE_BASE_URL": emulator.url, "DASHSCOPE_API_KEY": emulator.api_key, **env}
    return subprocess.run(
        cli_command("responses", *args),
        env=isolated_env(tmp_path, COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_show_prints_the_response_as_a_table_and_as_json(tmp_path: Path, emulator_reset: Emulator) -> None:
    created = _create(emulator_reset, "tell me about lanterns")
    table = _cli(tmp_path, emulator_reset, "show", created["id"])
    assert table.returncode == 0, table.stderr
    assert created["id"] in table.stdout and "qwen-plus" in table.stdout and "completed" in table.stdout
    assert "tell me about lanterns" in table.stdout  # the emulator's answer echoes its input
    shown = json.loads(_cli(tmp_path, emulator_reset, "show", created["id"], "--json").stdout)
    assert shown["id"] == created["id"] and shown["output"] == created["output"]


def test_items_lists_the_input_items(tmp_path: Path, emulator_reset: Emulator) -> None:
    created = _create(emulator_reset, "first question")
    listed = json.loads(_cli(tmp_path, emulator_reset, "items", created["id"], "--json", "--limit", "1").stdout)
    assert listed["response_id"] == created["id"]
    assert [item["role"] for item in listed["data"]] == ["user"]
    assert "first question" in json.dumps(listed["data"][0]["content"])
    table = _cli(tmp_path, emulator_reset, "items", created["id"])
    assert table.returncode == 0 and "first question" in table.stdout and "1 item(s)" in table.stdout


def test_delete_then_every_command_says_not_found(tmp_path: Path, emulator_reset: Emulator) -> None:
    created = _create(emulator_reset, "short-lived")
    deleted = _cli(tmp_path, emulator_reset, "delete", created["id"], "--json")
    assert deleted.returncode == 0, deleted.stderr
    answer = json.loads(deleted.stdout)
    assert (answer["id"], answer["deleted"]) == (created["id"], True)
    for command in ("show", "items", "delete"):
        gone = _cli(tmp_path, emulator_reset, command, created["id"])
        assert gone.returncode == 3, (command, gone.stderr)
        assert gone.stderr.strip() == f"bailian-flow: no stored response {created['id']!r}"


def test_unconfigured_and_unreachable(tmp_path: Path) -> None:
    missing = _cli(tmp_path, None, "show", "resp_x")
    assert missing.returncode == 4 and "DASHSCOPE_API_KEY is not set" in missing.stderr
    # Port 9 (discard) has no listener on loopback: the connection is refused, retried, then reported.
    down = _cli(tmp_path, None, "show", "resp_x", DASHSCOPE_BASE_URL="http://127.0.0.1:9", DASHSCOPE_API_KEY="sk-x")
    assert down.returncode == 4 and "cannot reach Bailian" in down.stderr


@pytest.mark.parametrize("command", ["show", "items", "delete"])
def test_help_has_an_example(tmp_path: Path, command: str) -> None:
    done = _cli(tmp_path, None, command, "--help")
    assert done.returncode == 0 and "Example" in done.stdout and "--json" in done.stdout
