"""`bailian-flow files upload`: a real subprocess against the emulator named by DASHSCOPE_BASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from client_helpers import SFT_LINE

from bailian_flow.client import BailianClient


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from bailian_flow.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_upload_prints_the_file_id_and_stays_quiet_off_a_terminal(bailian_env: Any, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(SFT_LINE * 100)
    env = {**os.environ, "DASHSCOPE_API_KEY": bailian_env.api_key, "DASHSCOPE_BASE_URL": bailian_env.url}
    done = _run(["files", "upload", str(path), "--purpose", "fine-tune", "--description", "cli"], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a TTY: no progress line
    file_id = done.stdout.strip()
    async with BailianClient() as client:
        info = await client.files.get(file_id)
    assert info.name == "train.jsonl" and info.description == "cli" and info.size == path.stat().st_size


def test_missing_file_fails_cleanly(bailian_env: Any, tmp_path: Path) -> None:
    env = {**os.environ, "DASHSCOPE_BASE_URL": bailian_env.url}
    done = _run(["files", "upload", str(tmp_path / "absent.jsonl")], env)
    assert done.returncode == 3 and "no such file" in done.stderr


def test_progress_line_when_stderr_is_a_terminal(bailian_env: Any, tmp_path: Path) -> None:
    import pty

    path = tmp_path / "train.jsonl"
    path.write_bytes(SFT_LINE * 2000)
    env = {**os.environ, "DASHSCOPE_API_KEY": bailian_env.api_key, "DASHSCOPE_BASE_URL": bailian_env.url}
    parent, child = pty.openpty()
    code = "import sys; from bailian_flow.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "files", "upload", str(path)], env=env, stdout=subprocess.PIPE, stderr=child
    )
    os.close(child)
    stdout, _ = process.communicate(timeout=60)
    shown = b""
    try:
        while chunk := os.read(parent, 4096):
            shown += chunk
    except OSError:
        pass  # the terminal closes with the child
    os.close(parent)
    assert process.returncode == 0
    assert stdout.strip()
    assert b"train.jsonl" in shown and b"(100%)" in shown


async def test_under_dev_upload_goes_to_the_profiles_emulator_without_settings(
    bailian_env: Any, tmp_path: Path
) -> None:
    from bailian_flow.local.profile import Profile, write_profile

    write_profile(Profile(dashscope_base_url=bailian_env.url), tmp_path / "config" / "bailian-flow" / "profile.json")
    path = tmp_path / "train.jsonl"
    path.write_bytes(SFT_LINE)
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "BAILIAN_FLOW_"))}

    done = _run(["files", "upload", str(path)], {**bare, "XDG_CONFIG_HOME": str(tmp_path / "config")})

    assert done.returncode == 0, done.stderr
    assert bailian_env.url in done.stderr, "it says where the file went"
    async with BailianClient() as client:
        assert (await client.files.get(done.stdout.strip())).size == path.stat().st_size
