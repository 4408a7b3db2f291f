"""The dashboard's cold start (issue 12, item 3): the findings form is drawn before the model
has loaded, a session's first run draws the form only (the browser's one-shot timer asks for
the results), and nothing on the first page's path imports the model's libraries.

The browser test serves app.py with a loader held back until the test lets it go (a file
appears), so the page is seen, and used, while the model is still loading; if the page waited
for the model before drawing the form, the form would not appear and the test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dashboard_server import serving
from streamlit.testing.v1 import AppTest

import crampdx.dashboard.loading
from crampdx.contract import load_schema
from crampdx.dashboard.pacing import RESULTS_FOLLOW
from crampdx.dashboard.widgets import FIRST_RUN_INPUTS, MORE_FOLLOW

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
HEAVY = ("sklearn", "shap", "matplotlib", "scipy", "pandas", "crampdx.model", "crampdx.render", "crampdx.training")
FIRST_PAGE_MODULES = ("crampdx", "crampdx.dashboard.pages", "crampdx.dashboard.state", "crampdx.dashboard.widgets",
                      "crampdx.dashboard.loading", "crampdx.dashboard.pacing")
SCHEMA = load_schema()
FIRST = SCHEMA["cramp_timing"]  # the form's first input: the History tab's first finding


def test_the_first_page_imports_none_of_the_models_libraries():
    script = (f"import sys\nfor name in {FIRST_PAGE_MODULES!r}: __import__(name)\n"
              f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    answer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=True)
    assert answer.stdout.strip().splitlines()[-1] == "[]", answer.stdout


def test_a_sessions_first_run_imports_none_of_the_models_libraries(tmp_path):
    """Not only the first page's modules: its first run too (validating the entries, drawing
    the form) does without pandas and the model's libraries."""
    script = textwrap.dedent(f"""
        import sys
        from streamlit.testing.v1 import AppTest
        import crampdx.dashboard.loading as loading
        loading._load = lambda: None  # the load starts with the second run; never here
        app = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=60).run()
        assert not app.exception and app.selectbox(key="f:{FIRST.id}").value == "not_assessed"
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    answer = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CRAMPDX_MODEL": str(tmp_path / "model")}, check=True)
    assert answer.stdout.strip().splitlines()[-1] == "[]", answer.stdout


def test_the_page_script_draws_the_form_before_it_waits_for_the_model():
    source = (ROOT / "dashboard" / "pages" / "differential.py").read_text(encoding="utf-8")
    assert (source.index("findings_column()") < source.index("form_first()") < source.index("wait_until_loaded(")
            < source.index("get_diagnoser("))


def test_a_sessions_first_run_draws_the_form_and_leaves_the_model_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("CRAMPDX_MODEL", str(tmp_path / "model"))  # a load of its own (one per model and process)
    asked = []

    def failing_load():
        asked.append("load")
        raise RuntimeError("the test's loader")

    monkeypatch.setattr(crampdx.dashboard.loading, "_load", failing_load)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert app.selectbox(key=f"f:{FIRST.id}").value == "not_assessed"  # the form
    assert RESULTS_FOLLOW in [c.value for c in app.caption]
    assert asked == []  # the model was neither loaded nor waited for
    assert not app.error and not [box for box in app.selectbox if box.label == "Explain a cause"]
    app.run()  # the run the browser's timer asks for
    assert asked == ["load"]
    assert "could not be used" in str(app.error[0].value)  # the failed load, answered in its place
    assert RESULTS_FOLLOW not in [c.value for c in app.caption]


def _history_inputs(app) -> list[str]:
    keys = [w.key for kind in (app.radio, app.selectbox, app.text_input) for w in kind]
    return [key for key in keys if key and key.startswith("f:") and SCHEMA[key[2:]].section == "history"]


def test_a_sessions_first_run_draws_the_first_inputs_and_the_next_run_all(tmp_path, monkeypatch):
    """The first run draws what a screen shows of the History tab (the browser draws the
    page sooner) and says the rest follows; the run the timer asks for draws every input."""
    monkeypatch.setenv("CRAMPDX_MODEL", str(tmp_path / "model"))
    monkeypatch.setattr(crampdx.dashboard.loading, "_load", lambda: None)
    history = [f.id for f in SCHEMA.in_section("history")]
    assert len(history) > FIRST_RUN_INPUTS  # else there is nothing to hold back
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert sorted(_history_inputs(app)) == sorted(f"f:{fid}" for fid in history[:FIRST_RUN_INPUTS])
    assert MORE_FOLLOW in [c.value for c in app.caption]
    app.run()
    assert sorted(_history_inputs(app)) == sorted(f"f:{fid}" for fid in history)
    assert MORE_FOLLOW not in [c.value for c in app.caption]


# The server, with the loader held until GATE exists (patched in the server's own process).
HELD_SERVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import crampdx.dashboard.loading as loading
    from streamlit.web.cli import main

    gate, load = Path(sys.argv[1]), loading._load

    def held_load():
        while not gate.exists():
            time.sleep(0.05)
        return load()

    loading._load = held_load
    sys.argv = ["streamlit", "run", "app.py", "--server.port", sys.argv[2], "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    main()
""")


@pytest.fixture
def held_server(tiny_model_dir, tmp_path):
    gate = tmp_path / "release-the-model"
    command = lambda port: [sys.executable, "-c", HELD_SERVER, str(gate), str(port)]  # noqa: E731
    with serving(command, {**os.environ, "CRAMPDX_MODEL": str(tiny_model_dir)}, tmp_path / "server.log") as url:
        yield url, gate


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_findings_can_be_entered_while_the_model_loads(held_server):
    from playwright.sync_api import expect, sync_playwright

    url, gate = held_server
    answer = FIRST.levels[0].label
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"])
        page = browser.new_page()
        sent: list[int] = []  # sizes of the messages the page sends
        page.on("websocket", lambda socket: socket.on("framesent", lambda payload: sent.append(len(payload))))
        first = page.get_by_role("combobox", name=FIRST.label, exact=True)
        page.goto(url)
        expect(first).to_be_enabled(timeout=90_000)  # the model is held: the form came without it
        expect(page.get_by_text("Loading the model", exact=False)).to_be_visible()
        assert page.get_by_role("combobox", name="Explain a cause").count() == 0  # no result before the model
        first.click()
        page.get_by_role("option", name=answer, exact=True).click()
        expect(first).to_have_value(answer)
        gate.touch()  # the model may load now
        expect(page.get_by_role("combobox", name="Explain a cause", exact=True)).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Loading the model", exact=False)).to_have_count(0)
        expect(first).to_have_value(answer)  # the entry made while loading is kept, and counted
        history = len(load_schema().in_section(FIRST.section))
        expect(page.get_by_text(f"1 of {history} entered", exact=True)).to_be_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        # The first run's timer ticked once: no rerun is asked for once the results are drawn (a
        # rerun request carries the widgets' states, over 30 bytes; a heartbeat is a few bytes).
        settled = len(sent)
        page.wait_for_timeout(2_000)
        assert [size for size in sent[settled:] if size > 30] == []
        browser.close()
