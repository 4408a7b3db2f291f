"""End to end in a real browser: `streamlit run app.py` on a free localhost port, driven by
Playwright with Debian's chromium (installed by .ci/run with apt-get; Playwright downloads
no browser here).

The server uses the tiny model (CRAMPDX_MODEL). Screenshots go to the test's tmp dir, or to
$CRAMPDX_SCREENSHOTS if set (docs/ was made that way, with CRAMPDX_E2E_MODEL pointing at
the default model: see docs/dashboard.md).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect as sync_api_expect
from playwright.sync_api import sync_playwright

from crampdx.synthetic.examples import load_examples

pytestmark = pytest.mark.slow  # a real browser against a real server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT = 90  # seconds for the server to answer its health check
UI_TIMEOUT = 90_000  # milliseconds for the page to show what is expected

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail("Debian's chromium is missing: .ci/run installs it with apt-get", pytrace=False)
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """The dashboard served by `streamlit run` on a free localhost port; stopped at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "CRAMPDX_MODEL": os.environ.get("CRAMPDX_E2E_MODEL", str(tiny_model_dir))}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def page(server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 2000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT)
        page.goto(server)
        yield page
        context.close()
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("CRAMPDX_SCREENSHOTS")
    directory = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def wait_idle(page) -> None:
    """Until the script run has finished (Streamlit shows a running indicator meanwhile)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=UI_TIMEOUT)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label`` (a combobox)."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def wait_for_value(page, label: str, text: str) -> str:
    """Until the selectbox labelled ``label`` shows a value containing ``text``."""
    box = page.get_by_role("combobox", name=label)
    sync_api_expect(box).to_have_value(re.compile(re.escape(text)), timeout=UI_TIMEOUT)
    return box.input_value()


def test_example_case_shows_ranking_and_contributions(page, shots):
    example = next(e for e in load_examples() if e.id == "pad_claudication")
    page.get_by_text("crampdx — differential diagnosis of leg cramps").wait_for()
    page.get_by_text("not been validated on patients", exact=False).first.wait_for()
    wait_idle(page)
    choose(page, "Load an example case", example.name)
    wait_idle(page)
    # the ranked list: the cause chooser shows the top cause with its ICD-10 code
    top = wait_for_value(page, "Explain a cause", "Peripheral arterial disease with claudication · I70.219")
    assert top.startswith("1. ")
    # two charts: the ranking and the contributions (waterfall), drawn by Vega
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    charts.nth(1).wait_for()
    assert charts.count() >= 2
    page.get_by_text("Why this cause").wait_for()
    page.get_by_text("Pedal pulses: diminished", exact=False).first.wait_for()
    page.get_by_text("Ask or examine next").wait_for()
    # the atypical-case check finishes in the background and the page redraws without it
    page.get_by_text("Checking how typical", exact=False).wait_for(state="detached")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(shots / "dashboard-differential.png"))

    # export: the JSON report of this case, built on click
    with page.expect_download() as download:
        page.get_by_role("button", name="Download JSON").click()
    report = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert report["findings"]["pedal_pulses"] == "diminished"
    assert report["differential"][0]["id"] == "pad_claudication"
    assert "not been validated on patients" in report["disclaimer"]


def test_about_and_knowledge_pages(page, shots):
    page.locator('[data-testid="stSidebar"]').get_by_text("About this model").click()
    wait_idle(page)
    page.get_by_text("Model card — crampdx").wait_for()
    page.get_by_text("Intended use").wait_for()
    page.get_by_text("not been validated on patients", exact=False).first.wait_for()
    page.screenshot(path=str(shots / "dashboard-about.png"))
    page.get_by_role("tab", name="Evaluation").click()
    page.get_by_text("The model against the exact posterior").wait_for()
    images = page.locator('[data-testid="stImage"] img')
    images.nth(1).wait_for()
    assert images.count() == 2  # calibration plot and confusion matrix
    page.locator('[data-testid="stSidebar"]').get_by_text("Knowledge browser").click()
    wait_idle(page)
    page.get_by_text("Key findings", exact=False).first.wait_for()
    page.get_by_text("Seed references behind them").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(shots / "dashboard-knowledge.png"))


def test_a_decimal_comma_in_a_lab_field_is_read_as_a_decimal(page):
    """Browser number fields drop a comma (2,5 became 25); the text field reads it and says so."""
    page.locator('[data-testid="stSidebar"]').get_by_text("Differential").click()
    wait_idle(page)
    page.get_by_role("tab", name="Laboratory").click()
    wait_idle(page)
    field = page.get_by_label(re.compile(r"^TSH \("))
    field.fill("2,5")
    field.press("Enter")
    wait_idle(page)
    page.get_by_text("Read as: TSH 2.50 mIU/L", exact=False).wait_for()
    assert field.input_value() == "2,5"
    assert page.locator('[data-testid="stException"]').count() == 0
