"""The status page in a real headless Chromium (Debian's package, driven by Playwright) against `bailian-flow dev`:
it asks for the token once, lists the stack's runs, shows a failed run's error, and a click cancels a run."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import SAMPLE, DevStack, isolated_env, start_dev

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "page-token"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(isolated_env(tmp_path_factory.mktemp("home"), BAILIAN_FLOW_API_TOKEN=TOKEN))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _wait_stage(dev: DevStack, run_id: str, stage: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while dev.cli_json("runs", "show", run_id)["run"]["stage"] != stage:
        assert time.monotonic() < deadline, f"{run_id} never reached {stage}"
        time.sleep(0.2)


def test_the_page_is_self_contained_html(dev: DevStack) -> None:
    request = urllib.request.Request(dev.urls["api"] + "/", headers={"Accept": "text/html,*/*"})
    with urllib.request.urlopen(request, timeout=10) as response:
        html = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "<script" in html and "http://" not in html and "https://" not in html
    # Probes and scripts asking for anything but HTML still get the health answer.
    with urllib.request.urlopen(dev.urls["api"] + "/", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"


def test_lists_runs_shows_an_error_and_cancels_with_a_click(dev: DevStack, browser: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    failed_id = dev.cli("put", str(bad), "--key", "datasets/page/bad.jsonl").stdout.strip()
    live_id = dev.cli("put", str(SAMPLE), "--key", "datasets/page/train.jsonl").stdout.strip()
    _wait_stage(dev, failed_id, "FAILED")
    _wait_stage(dev, live_id, "training")

    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    shots = Path(os.environ.get("BAILIAN_FLOW_SCREENSHOTS") or tmp_path)  # to look at them: set it
    page.goto(dev.urls["api"] + "/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector(f"tr[data-run-id='{failed_id}']")
    page.wait_for_selector(f"tr[data-run-id='{live_id}']")
    assert page.evaluate("sessionStorage.getItem('bailian-flow-token')") == TOKEN

    page.click(f"tr[data-run-id='{failed_id}']")
    error = page.wait_for_selector("#error")
    assert "datasets/page/bad.jsonl line 1, field messages[0].role" in error.inner_text()
    page.screenshot(path=str(shots / "failed.png"), full_page=True)

    page.select_option("#stage", "FAILED")
    page.wait_for_selector(f"tr[data-run-id='{live_id}']", state="detached")
    assert page.is_visible(f"tr[data-run-id='{failed_id}']")
    page.select_option("#stage", "")

    page.click(f"tr[data-run-id='{live_id}']")
    page.wait_for_selector("#timeline .bar-row")
    page.click("#cancel")
    page.wait_for_selector("#detail .stage-CANCELED")
    assert dev.cli_json("runs", "show", live_id)["run"]["stage"] == "CANCELED"
    page.screenshot(path=str(shots / "canceled.png"), full_page=True)
    assert all(url.startswith(dev.urls["api"]) for url in requests), requests

    # A reload in the same tab keeps the token; a new tab (another session) asks again.
    page.reload()
    page.wait_for_selector(f"tr[data-run-id='{live_id}']")
    other = browser.new_page()
    other.goto(dev.urls["api"] + "/")
    assert other.is_visible("#token")
