"""Dashboard safety (issue 13, item 6), through streamlit.testing.v1.AppTest on the tiny model:
it listens only on this machine, never shows a server path, shows every string a user
brings (imported names and values, file names, typed entries) as text and not as Markdown,
and answers the atypical-case check in the same run, without a polling fragment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dashboard_server import open_session, serving
from streamlit.testing.v1 import AppTest

import crampdx.dashboard.lifecycle
from crampdx.model import ArtifactError

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120
IMAGE = "![x](https://evil.example/p.png)"
LINK = "[reload the model](https://evil.example)"
# What a Markdown renderer would turn into an image or a link: unescaped, these fetch or click.
ACTIVE = re.compile(r"(?<!\\)!\\?\[|\]\((?=https?:)|https?://evil")
WIDGET_STATE = {"value", "default", "id", "form_id"}  # an input's own content: shown as text by the widget


@pytest.fixture
def app_env(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("CRAMPDX_MODEL", str(tiny_model_dir))
    return tiny_model_dir


@pytest.fixture
def at(app_env) -> AppTest:
    app = open_session(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert not app.exception, [e.value for e in app.exception]
    return app


def proto_strings(message):
    """(field name, text) for every string in a protobuf message, nested messages included."""
    for field, value in message.ListFields():
        items = value if isinstance(value, (list, tuple)) or type(value).__name__.startswith("Repeated") else [value]
        for item in items:
            if isinstance(item, str):
                yield field.name, item
            elif hasattr(item, "ListFields"):
                yield from proto_strings(item)


def shown(app: AppTest) -> list[str]:
    """Every string the page sends to the browser (bodies, labels, help texts, options, tab
    and expander labels, status labels), without the inputs' own values."""
    def walk(node):
        if getattr(node, "proto", None) is not None:
            yield from (text for name, text in proto_strings(node.proto) if name not in WIDGET_STATE)
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    return list(walk(app._tree))


def visible(markdown: str) -> str:
    """What a CommonMark renderer shows for text without markup: backslash escapes removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def assert_shown_as_text(app: AppTest, *originals: str, where) -> None:
    """No string on the page can become an image or a link, and each original is visible,
    literally, in one of the elements ``where`` lists (errors, captions...)."""
    active = [text for text in shown(app) if ACTIVE.search(text)]
    assert not active, active
    bodies = [visible(str(element.value)) for element in where]
    for original in originals:
        assert any(original in body for body in bodies), (original, bodies)


def upload(app: AppTest, name: str, document: dict) -> AppTest:
    app.file_uploader[0].set_value((name, json.dumps(document).encode(), "application/json"))
    return app.run()


def test_the_shipped_config_binds_the_dashboard_to_this_machine():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1"
    # and `streamlit run app.py` from the repository reads it (the config of the working directory)
    script = "from streamlit import config; print(config.get_option('server.address'))"
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREAMLIT_")}
    answer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    assert answer.stdout.strip().splitlines()[-1] == "127.0.0.1"


def test_an_imported_name_and_value_holding_markdown_are_shown_literally(at):
    upload(at, "case.json", {IMAGE: 1, "potassium": 2.5})
    assert not at.exception
    assert_shown_as_text(at, IMAGE, where=at.error)
    upload(at, "case.json", {"potassium": IMAGE, "sex": LINK})
    assert_shown_as_text(at, IMAGE, where=at.error)
    upload(at, "case.json", {"sex": LINK})
    assert_shown_as_text(at, LINK, where=at.error)
    assert "nothing was changed" in visible(str(at.error[0].value))


def test_a_file_name_holding_a_link_is_shown_literally(at):
    name = f"{LINK}.json"
    upload(at, name, {"potassium": 2.5, "sodium": 130})
    assert at.session_state["f:potassium"] == "2.5"  # imported
    assert_shown_as_text(at, name, where=at.success)
    at.session_state["section"] = "Laboratory"
    at.run()
    at.text_input(key="f:sodium").set_value("128").run()  # edited: the sidebar names the file it came from
    assert not at.exception
    assert_shown_as_text(at, name, where=at.sidebar.caption)


def test_a_typed_entry_holding_markdown_is_shown_literally(at):
    at.session_state["section"] = "Laboratory"
    at.run()
    at.text_input(key="f:potassium").set_value(IMAGE).run()
    assert not at.exception
    assert_shown_as_text(at, IMAGE, where=at.error)
    assert "Not used until corrected: Potassium" in [str(w.value) for w in at.warning][-1]


def server_paths(app: AppTest, *paths: Path) -> list[str]:
    return [text for text in shown(app) if any(str(path) in text for path in paths)]


def test_the_no_model_page_shows_no_server_path(tmp_path, monkeypatch, caplog):
    missing = tmp_path / "srv-private" / "model"
    monkeypatch.setenv("CRAMPDX_MODEL", str(missing))
    with caplog.at_level(logging.WARNING, logger=crampdx.dashboard.lifecycle.__name__):
        app = open_session(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert not app.exception
    assert "No trained model" in str(app.error[0].value)
    assert "model directory" in "\n".join(str(m.value) for m in app.markdown)
    assert not server_paths(app, tmp_path)
    assert str(missing) in caplog.text  # the operator finds the whole sentence in the server log


def test_a_damaged_model_is_named_without_its_path(tiny_model_dir, tmp_path, monkeypatch, caplog):
    damaged = tmp_path / "srv-private" / "model"
    shutil.copytree(tiny_model_dir, damaged)
    (damaged / "manifest.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("CRAMPDX_MODEL", str(damaged))
    with caplog.at_level(logging.WARNING, logger=crampdx.dashboard.lifecycle.__name__):
        app = open_session(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert not app.exception
    assert "could not be used" in str(app.error[0].value)
    assert not server_paths(app, tmp_path)
    assert str(damaged) in caplog.text


def test_training_from_the_page_shows_no_server_path(tmp_path, monkeypatch, caplog):
    target = tmp_path / "srv-private" / "model"
    monkeypatch.setenv("CRAMPDX_MODEL", str(target))

    def failing_train(out, report=print, **kwargs):  # reports the directory, then fails naming it, as train() may
        report(f"[5/5] save      {out}")
        raise ArtifactError(f"Cannot write the model to {out}: no permission to write in {Path(out).parent}.")

    monkeypatch.setattr(crampdx.dashboard.lifecycle, "train", failing_train)
    app = open_session(AppTest.from_file(APP, default_timeout=TIMEOUT))
    with caplog.at_level(logging.ERROR, logger=crampdx.dashboard.lifecycle.__name__):
        app.button[0].click().run()
    assert not app.exception
    assert any("Training failed (ArtifactError)" in str(e.value) for e in app.error)
    assert "[5/5] save      the dashboard's model directory" in [t.value for t in app.text]
    assert not server_paths(app, tmp_path)
    assert str(target) in caplog.text


def test_the_atypical_check_is_answered_in_the_same_run_without_polling(at):
    unusual = {"potassium": 2.1, "sodium": 164, "calcium": 13.4, "tsh": 0.02, "age": 41}  # not cached by other tests
    upload(at, "odd.json", unusual)  # one run, no reruns: the page waits for the check at its end
    assert not at.exception
    assert any("unusual for what the model knows" in str(w.value) for w in at.warning)
    assert not any("Checking how typical" in str(c.value) for c in at.caption)
    source = (ROOT / "dashboard" / "differential.py").read_text(encoding="utf-8")
    assert "st.fragment" not in source and "run_every" not in source


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def served(tiny_model_dir, tmp_path):
    """`streamlit run app.py` with the repository's config on a free localhost port (no
    --server.address: the config's binding is the one under test)."""
    log = tmp_path / "server.log"
    command = lambda port: [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]  # noqa: E731
    with serving(command, {**os.environ, "CRAMPDX_MODEL": str(tiny_model_dir)}, log) as url:
        yield url, log


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_in_a_browser_an_imported_image_or_link_fetches_nothing(served):
    from playwright.sync_api import sync_playwright

    url, log = served
    assert "127.0.0.1" in log.read_text() and "0.0.0.0" not in log.read_text()
    name = "[reload the model](https:evil.example).json"  # a file name cannot hold a slash
    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"])
        context = browser.new_context()
        context.route(re.compile(r"evil\.example"), lambda route: (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.goto(url)
        page.get_by_text("Explain a cause").first.wait_for()
        uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
        alerts = []
        for document, message in (({IMAGE: 1, "sex": LINK}, "not imported"), ({"potassium": 2.5}, "Imported 1 findings")):
            uploader.set_input_files(files=[{"name": name, "mimeType": "application/json",
                                             "buffer": json.dumps(document).encode()}])
            alert = page.locator('[data-testid="stAlert"]', has_text=message).first
            alert.wait_for()
            page.wait_for_timeout(1500)  # time for any image to be requested
            alerts.append(alert.inner_text())
        links = page.locator('a[href*="evil"], img[src*="evil"]').count()
        context.close()
        browser.close()
    assert not outside, outside  # no request left for the outside address
    assert links == 0
    assert IMAGE in alerts[0] and LINK in alerts[0] and name in alerts[1], alerts  # shown literally
