"""What every command promises before it does anything: --version, --help with options and an example, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_support import cli_command, isolated_env

COMMANDS = {
    ("runs", "list"): ["--stage", "--kind", "--json"],
    ("runs", "show"): ["--json"],
    ("runs", "watch"): ["--interval", "--json"],
    ("runs", "cancel"): ["--json"],
    ("runs", "retry"): ["--set", "--settings", "--json"],
    ("runs", "teardown"): ["--json"],
    ("put",): ["--key", "--set", "--settings", "--json"],
    ("validate",): ["--type", "--json"],
    ("dev",): ["--data-dir", "--api-token", "--http-port", "BAILIAN_FLOW_API_TOKEN"],
    ("demo",): ["--dataset", "--timeout"],
    ("emulator",): ["--port", "--data-dir", "--time-scale"],
    ("files", "upload"): ["--purpose", "--description"],
    ("doctor",): ["--probe", "--json", "--set", "--settings", "--batch-timeout"],
}


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = isolated_env(tmp_path, COLUMNS="200")
    return subprocess.run(cli_command(*args), env=env, capture_output=True, text=True, timeout=60, check=False)


def test_version(tmp_path: Path) -> None:
    done = _run(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("bailian-flow 0.")


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_help_shows_options_and_an_example(tmp_path: Path, command: tuple[str, ...]) -> None:
    done = _run(tmp_path, *command, "--help")
    assert done.returncode == 0, done.stderr
    for option in COMMANDS[command]:
        assert option in done.stdout, option
    assert "Example" in done.stdout


def test_top_level_help_lists_commands_and_exit_codes(tmp_path: Path) -> None:
    done = _run(tmp_path, "--help")
    assert done.returncode == 0
    for name in ("runs", "put", "validate", "dev", "demo", "emulator", "doctor"):
        assert name in done.stdout
    assert "Exit codes" in done.stdout


def test_an_unknown_option_is_a_usage_error_of_that_command(tmp_path: Path) -> None:
    done = _run(tmp_path, "runs", "list", "--bogus")
    assert done.returncode == 2
    assert "bailian-flow runs list" in done.stderr and "--bogus" in done.stderr


def test_a_directory_is_not_a_dataset(tmp_path: Path) -> None:
    done = _run(tmp_path, "put", str(tmp_path))
    assert done.returncode == 2 and "is a directory" in done.stderr


@pytest.mark.parametrize("function", ["on_upload", "on_file_ready", "on_timer", "on_success", "webhook"])
def test_no_function_imports_the_cli_libraries(tmp_path: Path, function: str) -> None:
    index = Path(__file__).resolve().parents[2] / "functions" / function / "index.py"
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('index', {str(index)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(done.stdout.split())
    assert not {"click", "rich", "tiktoken", "dashscope", "bailian_flow.cli"} & loaded


def test_dev_says_in_one_line_that_a_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        env = isolated_env(tmp_path)
        for flag in ("--http-port", "--emulator-port"):
            done = subprocess.run(
                cli_command("dev", "--ephemeral", flag, port), env=env, capture_output=True, text=True, timeout=90
            )
            assert done.returncode == 4, done.stderr
            assert "in use" in done.stderr and "Traceback" not in done.stderr, done.stderr
            assert done.stderr.strip().count("\n") == 0, done.stderr


def test_dev_says_in_one_line_what_is_wrong_with_its_config(tmp_path: Path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("resources: [\n")  # not YAML: the parser's message spans several lines
    done = _run(tmp_path, "dev", "--ephemeral", "--config", str(config))
    assert done.returncode == 4 and "s.yaml" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "DASHSCOPE_API_KEY is not set"),
        ({"DASHSCOPE_API_KEY": "k", "DASHSCOPE_BASE_URL": "127.0.0.1:8000"}, "must be an http:// or https:// URL"),
    ],
)
def test_files_upload_names_the_missing_setting(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("{}\n")
    done = subprocess.run(
        cli_command("files", "upload", str(path)), env=isolated_env(tmp_path, **env), capture_output=True, text=True
    )
    assert done.returncode == 4 and expected in done.stderr, done.stderr


def test_files_upload_refuses_a_directory(tmp_path: Path) -> None:
    done = _run(tmp_path, "files", "upload", str(tmp_path))
    assert done.returncode == 1 and "is a directory" in done.stderr
