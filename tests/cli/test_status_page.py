"""The status page in a real headless Chromium (Debian's package, driven by Playwright) against `bailian-flow dev`:
it asks for the token once, lists the stack's runs, shows a failed run's error, and a click cancels a run."""

from __future__ import annotations

import json
import os
import re
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


# --- the panels (issue #18 §2): each against real runs of the stack, in the browser and in `runs show` -----------


def _open(browser: Any, dev: DevStack, run_id: str, **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.goto(dev.urls["api"] + "/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector(f"#runs tr[data-run-id='{run_id}']")
    page.click(f"#runs tr[data-run-id='{run_id}']")
    return page


def _facts(dev: DevStack, run_id: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{dev.urls['api']}/runs/{run_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read())["facts"])


def _until_trained(dev: DevStack, run_id: str, steps: int) -> None:
    """Move Bailian's clock by hand until the job's logs show `steps` steps (nothing moves it meanwhile)."""
    for _ in range(60):
        if ((_facts(dev, run_id).get("progress") or {}).get("step") or 0) >= steps:
            return
        dev.advance_clock(5)
    raise AssertionError(f"{run_id} never reached step {steps}")


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    shots = Path(os.environ.get("BAILIAN_FLOW_SCREENSHOTS") or tmp_path)  # to look at them: set it
    page.screenshot(path=str(shots / name), full_page=True)


def test_a_training_run_draws_its_loss_as_an_inline_svg_chart(dev: DevStack, browser: Any, tmp_path: Path) -> None:
    # Three epochs asked for (Bailian's default is one): the chart has a validation loss past the first.
    put = ("put", str(SAMPLE), "--key", "datasets/page/progress.jsonl", "--set", "hyper_parameters.n_epochs=3")
    run_id = dev.cli(*put).stdout.strip()
    _wait_stage(dev, run_id, "training")
    _until_trained(dev, run_id, 12)  # past the first of three epochs: a validation loss too

    page = _open(browser, dev, run_id)
    page.wait_for_selector("#progress svg#loss-chart polyline.loss")
    # Read in one go: the emulator's clock also runs by itself, and the page redraws every 3 s.
    drawn = page.evaluate(
        """() => ({text: document.getElementById("progress-text").innerText,
        loss: document.querySelector("#loss-chart polyline.loss").getAttribute("points").split(" ")
          .map(p => +p.split(",")[1]),
        evals: document.querySelectorAll("#loss-chart circle.eval-dot").length})"""
    )
    found = re.match(r"step (\d+) of 30 · epoch ([\d.]+) of 3 · loss [\d.]+ · validation loss [\d.]+", drawn["text"])
    assert found, drawn["text"]
    step = int(found[1])
    # Every step logged is a point (the emulator logs each; the chart keeps up to 200); an eval per epoch.
    assert step >= 12 and len(drawn["loss"]) == step and drawn["evals"] == step // 10
    assert float(found[2]) == round(step / 10, 2)
    # Falling loss: the line's last point is lower on the chart (a larger y) than its first.
    assert drawn["loss"][-1] > drawn["loss"][0]
    terminal = dev.cli("runs", "show", run_id).stdout
    later = re.search(r"progress  step (\d+)/30, epoch [\d.]+/3, loss [\d.]+, validation loss", terminal)
    assert later and int(later[1]) >= step, terminal
    _shot(page, tmp_path, "training.png")
    dev.cli("runs", "cancel", run_id)


def test_a_done_run_shows_estimate_and_actual_the_model_to_call_and_what_it_owns(
    dev: DevStack, browser: Any, tmp_path: Path
) -> None:
    key = "datasets/page/done.jsonl"
    put = dev.cli("put", str(SAMPLE), "--key", key, "--set", "model=qwen3-14b", "--set", "hyper_parameters.n_epochs=2")
    run_id = put.stdout.strip()
    with dev.hurried():
        _wait_stage(dev, run_id, "DONE", timeout=60)
    detail = dev.cli_json("runs", "show", run_id)
    facts, run = detail["facts"], detail["run"]

    page = _open(browser, dev, run_id, permissions=["clipboard-read", "clipboard-write"])
    page.wait_for_selector("#costs")
    cells = page.eval_on_selector_all("#costs tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    tokens = facts["costs"]["estimate"]["tokens"]
    assert cells[0][:2] == ["tokens (dataset)", f"{tokens:,}"]
    assert cells[1][1] == "2" and cells[2][1:] == [f"{2 * tokens:,}", f"{run['usage']['tokens']:,}"]
    assert cells[3][1].endswith("USD") and cells[3][2].endswith("USD")
    assert page.inner_text("#deployed-model") == run["deployed_model"]
    assert run["deployed_model"] in page.inner_text("#call-curl")
    page.click("button[data-copies='call-python']")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == facts["deployment"]["python"] and f'model="{run["deployed_model"]}"' in copied
    compile(copied, "example.py", "exec")
    _shot(page, tmp_path, "done.png")
    assert "deployment" in page.inner_text("#owns") and run["deployed_model"] in page.inner_text("#owns")
    terminal = dev.cli("runs", "show", run_id).stdout
    assert "estimate and actual" in terminal and f"{run['usage']['tokens']:,}" in terminal
    assert f"call      model {run['deployed_model']}" in terminal
    assert f"deployment {run['deployed_model']} (deployment" in terminal.split("owns      ")[1]


def test_a_batch_run_shows_its_shards_lines_and_cost(dev: DevStack, browser: Any, tmp_path: Path) -> None:
    rows = [
        {
            "custom_id": f"q-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
        }
        for n in range(4)
    ]
    source = tmp_path / "questions.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    run_id = dev.cli("put", str(source), "--key", "batches/page/questions.jsonl").stdout.strip()
    with dev.hurried():
        _wait_stage(dev, run_id, "DONE", timeout=60)
    shards = dev.cli_json("runs", "show", run_id)["facts"]["shards"]

    page = _open(browser, dev, run_id)
    page.wait_for_selector("#shards tr.total")
    total = page.eval_on_selector("#shards tr.total", "r => [...r.cells].map(c => c.innerText)")
    assert total[4:] == ["4", "4", "0", "0"] and shards["totals"]["completed"] == 4
    first = page.eval_on_selector("#shards tbody tr", "r => [...r.cells].map(c => c.innerText)")
    assert first[1] == "qwen-plus" and first[4:6] == ["4", "4"]
    assert "CNY" in page.inner_text("#batch-costs")
    _shot(page, tmp_path, "batch.png")
    assert "shards" in dev.cli("runs", "show", run_id).stdout


@pytest.fixture
def full_dev(tmp_path: Path) -> Iterator[DevStack]:
    """A stack whose account has room for one fine-tune job, in the pipeline's settings and in the service."""
    stack = start_dev(isolated_env(tmp_path, BAILIAN_FLOW_API_TOKEN=TOKEN, BAILIAN_FLOW_QUOTA_FINE_TUNE_JOBS="1"))
    request = urllib.request.Request(
        f"{stack.urls['emulator']}/_emulator/config",
        data=json.dumps({"quotas": {"fine_tune_jobs": 1}}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    try:
        yield stack
    finally:
        stack.stop()


def test_the_account_panel_shows_quota_use_and_the_waiting_line(
    full_dev: DevStack, browser: Any, tmp_path: Path
) -> None:
    first = full_dev.cli("put", str(SAMPLE), "--key", "datasets/line/first.jsonl").stdout.strip()
    _wait_stage(full_dev, first, "training")
    second = full_dev.cli("put", str(SAMPLE), "--key", "datasets/line/second.jsonl").stdout.strip()
    _wait_stage(full_dev, second, "waiting")
    deadline = time.monotonic() + 30
    while full_dev.cli_json("runs", "account")["quotas"]["fine-tune-jobs"]["used"] is None:
        assert time.monotonic() < deadline, "the timer never counted the job quota"
        time.sleep(0.3)

    page = _open(browser, full_dev, second)
    page.wait_for_selector("#line tr[data-run-id]")
    assert "null" not in page.inner_text("#account")
    assert page.inner_text("#account [data-quota='fine-tune-jobs'] .use").startswith("1/1")
    assert "of 5.37 GB" in page.inner_text("#account [data-quota='files'] .use")
    row = page.eval_on_selector(f"#line tr[data-run-id='{second}']", "r => [...r.cells].map(c => c.innerText)")
    assert row[0] == "#1" and row[3] == "datasets/line/second.jsonl" and row[4].startswith("fine-tune jobs")
    page.wait_for_selector("#detail dd:has-text('fine-tune jobs, place 1 in line')")
    _shot(page, tmp_path, "account.png")
    terminal = full_dev.cli("runs", "account").stdout
    assert "fine-tune-jobs" in terminal and second in terminal
