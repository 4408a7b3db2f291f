"""The dashboard's main flows through streamlit.testing.v1.AppTest, on the tiny model.

Each test drives a fresh session of app.py; the loaded Diagnoser and the per-case answers
are cached per process, so only the first run pays for loading.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from pathlib import Path

import pytest
from dashboard_server import open_session
from streamlit.testing.v1 import AppTest

import crampdx.dashboard.pages

from crampdx.contract import load_schema
from crampdx.synthetic.examples import load_examples
from crampdx import DISCLAIMER

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = Path(crampdx.dashboard.pages.__file__).parent
TIMEOUT = 120
SCHEMA = load_schema()


@pytest.fixture(scope="module")
def app_env(tiny_model_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRAMPDX_MODEL", str(tiny_model_dir))
        yield tiny_model_dir


@pytest.fixture
def at(app_env) -> AppTest:
    app = open_session(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert not app.exception, [e.value for e in app.exception]
    return app


def switch_page(at: AppTest, page: str) -> AppTest:
    """Open one of the st.navigation pages (differential, about, knowledge)."""
    at.switch_page(str(PAGES / f"{page}.py"))
    return at.run()


def ranking(at: AppTest) -> list[str]:
    """The ranked causes as the cause chooser lists them ("1. name · ICD — p %")."""
    return list(chooser(at).options)


def chooser(at: AppTest):
    """The "Explain a cause" selectbox (one per case)."""
    return next(box for box in at.selectbox if box.label == "Explain a cause")


def open_section(at: AppTest, name: str) -> AppTest:
    """Switch the findings tabs (only the open section's inputs are drawn)."""
    at.session_state["section"] = name
    return at.run()


def value(at: AppTest, finding_id: str):
    """A finding's entry, measurements read back as numbers (None when empty or never drawn)."""
    try:
        entry = at.session_state["f:" + finding_id]
    except KeyError:
        return None
    if SCHEMA[finding_id].is_numeric and isinstance(entry, str):
        return float(entry) if entry else None
    return entry


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_first_view_has_disclaimer_ranking_and_all_findings_not_assessed(at):
    assert DISCLAIMER in texts(at.warning)
    assert len(ranking(at)) == 10
    assert "not assessed" in texts(at.info) or "No findings entered" in texts(at.info)
    assert [t.label for t in at.tabs][:4] == ["History", "Examination", "Laboratory", "Background & medications"]
    assert at.selectbox(key="f:cramp_timing").value == "not_assessed"
    assert at.radio(key="f:urge_to_move").value == "not_assessed"
    open_section(at, "Laboratory")
    potassium = at.text_input(key="f:potassium")
    assert potassium.value == ""
    assert "mmol/L" in potassium.label and "3.5–5.0" in potassium.label
    open_section(at, "Background & medications")
    assert at.radio(key="f:med_diuretic").value == "not_assessed"
    assert at.text_input(key="f:age").value == ""


def enter_hypokalemia(at: AppTest, potassium: str) -> AppTest:
    """Leg weakness and a diuretic, then potassium as typed; ends on the Laboratory tab."""
    at.radio(key="f:weakness_reported").set_value("present")
    open_section(at, "Background & medications")
    at.radio(key="f:med_diuretic").set_value("present")
    open_section(at, "Laboratory")
    return at.text_input(key="f:potassium").set_value(potassium).run()


def test_entering_findings_changes_the_ranking(at):
    before = ranking(at)
    enter_hypokalemia(at, "2.6")
    assert not at.exception
    after = ranking(at)
    assert after != before
    assert after[0].startswith("1. Hypokalemia")
    # the explanation of the chosen (top) cause names the entered findings in clinical words
    assert "Potassium 2.6 mmol/L (low)" in texts(at.markdown)
    # the medication-review red flag is shown for the diuretic
    assert "Review medications" in texts(at.info)


def test_a_result_known_only_in_words_or_with_a_decimal_comma_is_read_and_shown(at):
    enter_hypokalemia(at, "low")
    assert not at.exception
    assert "Read as: Potassium: low (no value)" in texts(at.tabs[2].caption)
    assert "Potassium: low (no value)" in texts(at.markdown)  # the explanation says it in words
    at.text_input(key="f:potassium").set_value("2,6").run()
    assert "Read as: Potassium 2.6 mmol/L (low)" in texts(at.tabs[2].caption)
    at.text_input(key="f:potassium").set_value("lowish").run()
    assert "Potassium:" in texts(at.tabs[2].error) and "Not used until corrected: Potassium" in texts(at.warning)


def test_choosing_another_cause_explains_it(at, kb):
    second = ranking(at)[1].split(". ", 1)[1].split(" · ")[0]
    cause_id = next(c.id for c in kb.classes if c.name == second)
    chooser(at).set_value(cause_id).run()
    assert not at.exception
    assert chooser(at).index == 1
    assert f"{second}:" in texts(at.caption)


def test_load_example_fills_its_findings_and_ranks_its_cause(at):
    example = next(e for e in load_examples() if e.id == "pad_claudication")
    at.selectbox(key="example").set_value(example.id).run()
    assert not at.exception
    for fid, expected in example.case.values.items():
        assert value(at, fid) == expected, fid
    assert ranking(at)[0].startswith("1. Peripheral arterial disease with claudication · I70.219")
    assert "Pedal pulses: diminished" in texts(at.markdown)
    assert example.summary in texts(at.sidebar.caption)


def test_impossible_lab_value_shows_an_inline_error_naming_the_field(at):
    open_section(at, "Laboratory")
    at.text_input(key="f:potassium").set_value("20").run()
    assert not at.exception
    inline = texts(at.tabs[2].error)  # in the Laboratory tab, under the field
    assert "Potassium: 20 mmol/L is outside the plausible range" in inline
    assert "Not used until corrected: Potassium" in texts(at.warning)
    assert len(ranking(at)) == 10  # the rest of the case is still ranked
    at.text_input(key="f:potassium").set_value("3.1").run()
    assert "Potassium" not in texts(at.error)


def test_an_edited_example_can_be_loaded_again(at):
    at.selectbox(key="example").set_value("hypokalemia").run()
    assert "load_again" not in [b.key for b in at.button]  # nothing changed yet
    open_section(at, "Laboratory")
    at.text_input(key="f:potassium").set_value("4.1").run()
    assert "have changed since" in texts(at.sidebar.caption)
    at.button(key="load_again").click().run()
    assert not at.exception
    assert value(at, "potassium") == 2.8
    assert "have changed since" not in texts(at.sidebar.caption)


def test_a_pregnant_man_is_named_inline_and_left_out(at):
    open_section(at, "Background & medications")
    at.selectbox(key="f:sex").set_value("male")
    at.selectbox(key="f:pregnancy").set_value("trimester_3").run()
    assert not at.exception
    assert "not possible with sex male" in texts(at.tabs[3].error)
    assert "Not used until corrected: Pregnancy" in texts(at.warning)
    assert "No findings entered" not in texts(at.info)


def test_clear_all_resets_every_finding(at):
    at.selectbox(key="example").set_value("hypokalemia").run()
    assert value(at, "potassium") == 2.8
    at.button(key="clear_all").click().run()
    assert not at.exception
    assert value(at, "potassium") is None
    assert value(at, "med_diuretic") == "not_assessed"
    assert at.selectbox(key="example").value == ""
    assert "No findings entered" in texts(at.info)


def test_bad_json_import_shows_one_message_and_keeps_the_case(at):
    at.selectbox(key="example").set_value("hypocalcemia").run()
    at.file_uploader[0].set_value(("case.json", b"{not json", "application/json")).run()
    assert not at.exception
    assert "not valid JSON" in texts(at.error)
    assert value(at, "calcium") == 7.3  # nothing lost


def test_import_of_an_unknown_finding_names_it_and_changes_nothing(at):
    open_section(at, "Laboratory")
    at.text_input(key="f:sodium").set_value("128").run()
    payload = json.dumps({"potassium": 2.5, "shoe_size": 44}).encode()
    at.file_uploader[0].set_value(("case.json", payload, "application/json")).run()
    assert "shoe\\_size" in texts(at.error) and "nothing was changed" in texts(at.error)  # shown as text, escaped
    assert value(at, "sodium") == 128 and value(at, "potassium") is None


def test_import_accepts_an_exported_report(at):
    report = {"format_version": 1, "findings": {"sodium": 124, "med_diuretic": "present", "age": 80}, "differential": []}
    at.file_uploader[0].set_value(("report.json", json.dumps(report).encode(), "application/json")).run()
    assert not at.exception
    assert value(at, "sodium") == 124 and value(at, "med_diuretic") == "present" and value(at, "age") == 80
    assert "Imported 3 findings" in texts(at.success)


def test_ask_next_answers_fill_the_same_finding(at):
    asks = [w for w in at.selectbox if str(w.key).startswith("ask:")] + [w for w in at.radio if str(w.key).startswith("ask:")]
    assert asks, "no 'ask or examine next' inputs"
    widget = asks[0]
    finding_id = widget.key.removeprefix("ask:")
    finding = load_schema()[finding_id]
    answer = "present" if finding.kind == "binary" else finding.level_ids[0]  # options show labels, not ids
    widget.set_value(answer).run()
    assert not at.exception
    assert value(at, finding_id) == answer
    assert f"ask:{finding_id}" not in [w.key for w in at.selectbox] + [w.key for w in at.radio]


def test_atypical_case_warning_arrives_after_the_background_check(at):
    unusual = {"potassium": 2.0, "sodium": 165, "calcium": 13.5, "tsh": 0.01, "age": 40}
    at.file_uploader[0].set_value(("odd.json", json.dumps(unusual).encode(), "application/json")).run()
    for _ in range(40):  # the check runs in the background; the page polls, as a browser would
        if "unusual for what the model knows" in texts(at.warning):
            break
        time.sleep(0.25)
        at.run()
    assert not at.exception
    assert "unusual for what the model knows" in texts(at.warning)
    assert "Checking how typical" not in texts(at.caption)


def test_typical_case_has_no_atypical_warning(at):
    at.selectbox(key="example").set_value("restless_legs").run()
    for _ in range(40):
        if "Checking how typical" not in texts(at.caption):
            break
        time.sleep(0.25)
        at.run()
    assert "Checking how typical" not in texts(at.caption)
    assert "unusual for what the model knows" not in texts(at.warning)


def test_about_view_renders_model_card_and_knowledge_and_keeps_entries(at):
    open_section(at, "Laboratory")
    at.text_input(key="f:magnesium").set_value("1.1").run()
    switch_page(at, "about")
    assert not at.exception
    assert DISCLAIMER in texts(at.warning)
    markdown = texts(at.markdown)
    assert "Model card — crampdx" in markdown and "Limitations" in markdown and "Intended use" in markdown
    assert "exact posterior" in markdown
    comparison = at.dataframe[0].value
    assert list(comparison.columns) == ["figure", "model", "exact posterior"]
    assert "top-1 accuracy" in list(comparison["figure"]) and comparison["exact posterior"].between(0, 10).all()
    assert "agreement with the exact posterior" in texts(at.markdown)
    assert "calibration error against the exact posterior" in texts(at.markdown)
    switch_page(at, "knowledge")
    assert DISCLAIMER in texts(at.warning)
    at.selectbox(key="kb_class").set_value("hypokalemia").run()
    markdown = texts(at.markdown)
    assert "E87.6" in markdown and "seed:" in markdown and "[3]" in markdown
    key_rows = at.dataframe[-1].value
    assert "Potassium" in key_rows["finding"].iloc[0]
    switch_page(at, "differential")
    assert value(at, "magnesium") == 1.1


def test_missing_model_is_explained_and_the_button_trains_it(app_env, tmp_path, monkeypatch):
    import crampdx.dashboard.lifecycle

    target = tmp_path / "model"
    monkeypatch.setenv("CRAMPDX_MODEL", str(target))

    def fake_train(out, report=print, **kwargs):  # copies the tiny model instead of 3 minutes of training
        report("[1/5] generate  cases")
        shutil.copytree(app_env, out)
        report("[5/5] save")

    monkeypatch.setattr(crampdx.dashboard.lifecycle, "train", fake_train)
    app = open_session(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert not app.exception
    assert "No trained model" in texts(app.error)
    assert DISCLAIMER in texts(app.warning)
    app.button[0].click().run()
    assert not app.exception
    assert (target / "manifest.json").is_file()
    assert len(ranking(app)) == 10


def test_parse_import_messages():
    from crampdx.dashboard.state import MAX_IMPORT_BYTES, parse_import

    with pytest.raises(ValueError, match="at most"):
        parse_import(b" " * (MAX_IMPORT_BYTES + 1))
    with pytest.raises(ValueError, match="JSON object"):
        parse_import(b"[1, 2]")
    with pytest.raises(ValueError, match="potassium"):
        parse_import(b'{"potassium": "plenty"}')
    assert parse_import(b'{"potassium": "high"}').values["potassium"].text == "high"  # a result known in words
    case = parse_import(json.dumps({"findings": {"Potassium": "2.9", "sex": "female"}}).encode())
    assert dict(case.values) == {"potassium": 2.9, "sex": "female"}


def test_streamlit_config_is_locked_down():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["headless"] is True
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] <= 1
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] in (False, "none")
