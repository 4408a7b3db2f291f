"""crampdx dashboard: enter findings, see the ranked causes of leg cramps and why.

Run with ``streamlit run app.py``. A thin script over ``model/``: widgets are built from the
finding schema, every number comes from the ``Diagnoser`` (loaded once per process with
``st.cache_resource``), and the per-case answers are cached by the case's values with
``st.cache_data`` so that reruns stay fast. Decision support for clinicians, trained on
synthetic cases; not validated on patients.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import streamlit as st

from model import CaseError, Diagnoser, load_schema, validate_case
from model.case import validate_what_is_valid
from model.artifact import ArtifactError, default_artifact_dir
from model.charts import cause_label, ranking_chart, waterfall_chart
from model.examples import load_examples
from model.red_flags import red_flags
from model.report import (AGREEMENT_METRICS, DISCLAIMER, case_report, findings_from_json, markdown_report,
                          model_versus_posterior, percent)
from synthetic.summary import cited_references, key_findings

SCHEMA = load_schema()
NA = "not_assessed"  # the first option of every finding: nothing entered
FINDING = "f:"  # session-state key of a finding's input
ASK_NEXT = "ask:"  # key of the inline input under "ask or examine next"
TOP = 10
MAX_IMPORT_BYTES = 100_000
GROUPS = {"demographics": "Demographics", "comorbidities": "Comorbidities", "medications": "Medications", "context": "Context"}
ALERTS = {"urgent": (st.error, ":material/emergency_home:"), "warning": (st.warning, ":material/warning:"),
          "advice": (st.info, ":material/medication:")}
VIEWS = ("Differential", "About this model")
LABELS = {f.id: {NA: "not assessed", **{level.id: level.label for level in f.levels}} for f in SCHEMA}


# -------------------------------------------------------------------------------- model

@st.cache_resource(show_spinner="Loading the model…")
def load_diagnoser(path: str) -> Diagnoser:
    """The verified model, loaded once per process and shared by every session."""
    return Diagnoser.load(path)


@st.cache_resource
def training_lock() -> threading.Lock:
    return threading.Lock()


def model_key(diagnoser: Diagnoser) -> str:
    return f"{diagnoser.path_}:{diagnoser.manifest_.get('model_sha256')}"


def get_diagnoser() -> Diagnoser | None:
    """The model, or an explanation with a button that trains the default one."""
    path = default_artifact_dir()
    try:
        return load_diagnoser(str(path))
    except ArtifactError as error:
        st.error(str(error))
    st.write(f"The dashboard needs a trained model. It can train the default one now from synthetic cases "
             f"into `{path}` (about three minutes on two cores), as `crampdx train` does.")
    if st.button("Train the default model", type="primary"):
        train_default(path)
    return None


def train_default(path: Path) -> None:
    from training.pipeline import train

    lock = training_lock()
    if not lock.acquire(blocking=False):
        st.info("Another session is training the model right now; reload this page in a few minutes.")
        return
    try:
        with st.status("Training the default model…", expanded=True) as status:
            try:
                train(path, report=lambda line: st.text(line))
            except Exception as error:  # shown in one sentence, never as a traceback
                status.update(label="Training failed", state="error")
                st.error(f"Training failed ({type(error).__name__}: {error}); try `crampdx train` in a terminal.")
                return
            status.update(label=f"Default model trained into {path}", state="complete", expanded=False)
    finally:
        lock.release()
    load_diagnoser.clear()
    st.rerun()


def _frozen(case) -> tuple:
    return tuple(sorted(case.values.items()))


@st.cache_resource
def thread_limits():
    """Per-case work runs with one OpenMP and one BLAS thread. A case is one row (or a few
    hundred), so more threads save nothing, while idle OpenMP and OpenBLAS workers spin after
    each call and take the second core from the next rerun: several times slower reruns."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# Per-case answers, cached by (model, the case's values): a rerun that does not change the
# case (choosing another cause, switching a section) costs nothing, and going back to an
# earlier case is instant. The Diagnoser is shared, not hashed (leading underscore).
@st.cache_data(max_entries=512, show_spinner=False)
def assess(_diagnoser: Diagnoser, key: str, values: tuple) -> dict:
    """The differential, red flags, the top cause's explanation and the next findings."""
    case = _diagnoser.case(dict(values))
    with thread_limits().limit(limits=1):
        causes = _diagnoser.rank(case)
        return {
            "causes": causes,
            "flags": red_flags(case, [c.id for c in causes]),  # Diagnoser.red_flags without ranking twice
            "explanation": _diagnoser.explain(case, causes[0].id),
            "next": _diagnoser.next_best_findings(case, k=5),
        }


@st.cache_resource
def background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="crampdx-atypical")


@st.cache_resource(max_entries=512, show_spinner=False)
def atypical_check(_diagnoser: Diagnoser, key: str, values: tuple) -> Future:
    """The atypical-case check of a case (the slowest question, about 0.2 s: it scores
    thousands of reference cases), run in the background once per case and shared by all
    sessions; the page asks for it after everything else is drawn."""
    return background().submit(_atypical, _diagnoser, dict(values))


def _atypical(diagnoser: Diagnoser, values: dict):
    with thread_limits().limit(limits=1):
        return diagnoser.atypical(values)


@st.fragment(run_every=0.3)
def await_atypical(future: Future) -> None:
    """Polls until the atypical-case check is done, then redraws the page with it."""
    if future.done():
        st.rerun(scope="app")
    st.caption("Checking how typical this combination of findings is…")


@st.cache_data(max_entries=512, show_spinner=False)
def explained(_diagnoser: Diagnoser, key: str, values: tuple, cause_id: str):
    with thread_limits().limit(limits=1):
        return _diagnoser.explain(dict(values), cause_id)


# ------------------------------------------------------------------------------- inputs

def default_of(finding) -> Any:
    return None if finding.is_numeric else NA


def entered() -> dict[str, Any]:
    """What the inputs hold: finding id -> value, only the findings that were assessed."""
    values = {}
    for finding in SCHEMA:
        value = st.session_state.get(FINDING + finding.id)
        if value is not None and value != NA:
            values[finding.id] = value
    return values


def set_findings(values: dict[str, Any]) -> None:
    """Replace every input's value (callbacks only: before the widgets are drawn)."""
    for finding in SCHEMA:
        st.session_state[FINDING + finding.id] = values.get(finding.id, default_of(finding))


def clear_all() -> None:
    set_findings({})
    st.session_state["example"] = ""
    st.session_state.pop("import_message", None)
    st.session_state.pop("loaded", None)


def load_case(values: dict[str, Any], name: str) -> None:
    """Replace the entries with a loaded case, remembered so that it can be loaded again."""
    set_findings(values)
    st.session_state["loaded"] = (name, values)


def load_again() -> None:
    name, values = st.session_state["loaded"]
    set_findings(values)


def load_example() -> None:
    chosen = st.session_state.get("example")
    example = next((e for e in load_examples() if e.id == chosen), None)
    if example is not None:
        load_case(dict(example.case.values), example.name)
        st.session_state.pop("import_message", None)


def parse_import(data: bytes):
    """A case from an uploaded JSON file: a finding -> value object or a crampdx report.

    Raises ValueError with one clear sentence; the caller keeps the current findings.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise ValueError(f"The file is {len(data):,} bytes; a case file is at most {MAX_IMPORT_BYTES:,} bytes.")
    try:
        document = findings_from_json(data)
    except ValueError as error:
        raise ValueError(f"The case was not imported: {error}.") from None
    try:
        return validate_case(document, schema=SCHEMA)
    except CaseError as error:
        shown = list(error.problems.items())[:4]
        more = f" and {len(error.problems) - 4} more" if len(error.problems) > 4 else ""
        details = "; ".join(f"{name}: {message}" for name, message in shown)
        raise ValueError(f"The case was not imported, nothing was changed: {details}{more}.") from None


def import_case() -> None:
    upload = st.session_state.get("import_file")
    if upload is None:
        return
    try:
        case = parse_import(upload.getvalue())
    except ValueError as error:
        st.session_state["import_message"] = ("error", str(error))
        return
    load_case(dict(case.values), upload.name)
    st.session_state["example"] = ""
    st.session_state["import_message"] = ("success", f"Imported {len(case)} findings from {upload.name}.")


def adopt(finding_id: str) -> None:
    """An answer given under "ask or examine next" becomes the finding's entry."""
    finding = SCHEMA[finding_id]
    st.session_state[FINDING + finding_id] = st.session_state.get(ASK_NEXT + finding_id, default_of(finding))
    st.session_state[ASK_NEXT + finding_id] = default_of(finding)


def finding_label(finding) -> str:
    if not finding.is_numeric:
        return finding.label
    if finding.section in ("laboratory", "examination"):
        low, high = finding.reference
        d = finding.decimals
        return f"{finding.label} ({finding.unit}; reference {low:.{d}f}–{high:.{d}f})"
    return f"{finding.label} ({finding.unit})"


def finding_input(finding, key: str, *, label: str | None = None, collapsed: bool = False, **callback) -> None:
    """One finding's widget: a number (empty = not assessed) or a choice that starts at 'not assessed'."""
    label = label or finding_label(finding)
    visibility = "collapsed" if collapsed else "visible"
    if finding.is_numeric:
        st.number_input(label, value=None, step=10.0 ** -finding.decimals, format=f"%.{finding.decimals}f",
                        placeholder="not assessed", key=key, help=finding.help, label_visibility=visibility, **callback)
    elif finding.kind == "binary":
        st.radio(label, (NA, "present", "absent"), format_func=LABELS[finding.id].get, horizontal=True,
                 key=key, help=finding.help, label_visibility=visibility, **callback)
    else:
        st.selectbox(label, (NA, *finding.level_ids), format_func=LABELS[finding.id].get, key=key,
                     help=finding.help, label_visibility=visibility, **callback)


def inputs(case, problems: dict[str, str]) -> None:
    """Findings entry in the seed's order: history, examination, laboratory, background.

    Only the open section's inputs are drawn (the tabs rerun the script when switched), which
    keeps a rerun fast; the other sections' entries are kept by :func:`keep_entries`.
    """
    tabs = st.tabs(list(SCHEMA.sections.values()), key="section", on_change="rerun")
    for tab, section in zip(tabs, SCHEMA.sections):
        with tab:
            entered_here = sum(f.id in case for f in SCHEMA.in_section(section))
            if tab.open is False:
                continue
            st.caption(f"{entered_here} of {len(SCHEMA.in_section(section))} entered")
            group = None
            for finding in SCHEMA.in_section(section):
                if finding.group and finding.group != group:
                    group = finding.group
                    st.markdown(f"**{GROUPS.get(group, group)}**")
                finding_input(finding, FINDING + finding.id)
                if finding.id in problems:
                    st.error(f"{finding.label}: {problems[finding.id]}")
                elif finding.id in case.flags:
                    st.caption(f"{'↓ below' if case.flags[finding.id] == 'low' else '↑ above'} the reference range")


# ------------------------------------------------------------------------------ results

def show_alerts(assessment: dict, problems: dict[str, str]) -> None:
    for flag in assessment["flags"]:
        show, icon = ALERTS[flag.severity]
        because = f" *Because: {', '.join(flag.because)}.*" if flag.because else ""
        show(f"**{flag.title}.** {flag.message}{because}", icon=icon)
    if problems:
        names = ", ".join(SCHEMA[fid].label for fid in problems)
        st.warning(f"Not used until corrected: {names}.")


def show_atypical(future: Future) -> None:
    if not future.done():
        await_atypical(future)
        return
    try:
        atypical = future.result()
    except Exception as error:  # never a traceback: say the check is unavailable
        st.caption(f"The atypical-case check failed ({type(error).__name__}).")
        return
    if atypical.is_atypical:
        st.warning(atypical.message, icon=":material/help:")


def show_ranking(causes, chosen: str) -> None:
    frame, spec = ranking_chart(causes, chosen)
    st.vega_lite_chart(frame, spec, width="stretch", height=spec["height"])


def choose_cause(causes, values: tuple) -> str:
    """The cause to explain: the top one for each new case, until another is chosen.

    One selectbox per case (its key names the case): the ranked options change with every
    case, and a fresh widget starts at the top cause instead of carrying a stale choice.
    """
    ids = [c.id for c in causes]
    names = {c.id: f"{i}. {cause_label(c)} — {percent(c.probability)}" for i, c in enumerate(causes, 1)}
    key = "explain:" + hashlib.sha1(repr(values).encode()).hexdigest()[:16]
    return st.selectbox("Explain a cause", ids, format_func=names.get, key=key)


def show_explanation(explanation, prior: float | None) -> None:
    frame, spec = waterfall_chart(explanation)
    st.vega_lite_chart(frame, spec, width="stretch", height=spec["height"] + 30)
    st.caption(f"**{explanation.cause_name}: {percent(explanation.probability)}.** The bars start at the score of "
               f"an average synthetic case (dark grey, {explanation.base_value:+.2f}); each entered finding moves the "
               f"score up (green, for) or down (red, against); the {explanation.n_not_assessed} findings not assessed "
               f"count together as one line (light grey, {explanation.not_assessed:+.2f}) and are never reasons. Blue: "
               "this case's score. Probabilities are the softmax of the causes' scores: a cause is more probable the "
               "higher its score is above the others'."
               + (f" Its prior in the knowledge base is {percent(prior)}." if prior is not None else ""))
    largest = max((abs(c.contribution) for c in explanation.contributions), default=0.0)
    if abs(explanation.not_assessed) > largest:
        st.caption("The findings not yet assessed move this score more than any entered finding: what is not known "
                   "still shapes the ranking, so the suggestions below matter.")
    pro, contra = explanation.for_and_against()
    shown = [c for c in (*pro, *contra) if abs(c.contribution) >= 0.005]
    left, right = st.columns(2)
    for column, title, items in ((left, "For", [c for c in shown if c.contribution > 0]),
                                 (right, "Against", [c for c in shown if c.contribution < 0])):
        column.markdown(f"**{title}**\n" + ("".join(f"\n- {c.text} ({c.contribution:+.2f})" for c in items) or "\n- none"))
    negligible = len(explanation.contributions) - len(shown)
    if negligible:
        st.caption(f"{negligible} entered finding{'s' if negligible > 1 else ''} had no noticeable effect on this cause "
                   "(|contribution| < 0.005).")


def show_next(suggestions) -> None:
    st.subheader("Ask or examine next")
    if not suggestions:
        st.caption("Every finding has been entered.")
        return
    st.caption("The findings whose answers are expected to sharpen the differential most "
               "(expected information gain, from the knowledge base). Answer here or in its section.")
    for item in suggestions:
        finding = SCHEMA[item.finding_id]
        with st.container(border=True):
            text, field = st.columns([3, 2])
            answers = ", ".join(f"{label} {p:.0%}" for label, p in item.answers[:4])
            text.markdown(f"**{item.label}** · {SCHEMA.sections[item.section]}  \n"
                          f"{item.expected_information_gain:.2f} bits; {item.chance_top_cause_changes:.0%} chance "
                          f"the top cause changes  \n*Likely: {answers}*")
            with field:
                finding_input(finding, ASK_NEXT + item.finding_id, label=f"{finding_label(finding)} (ask next)",
                              collapsed=True, on_change=adopt, args=(item.finding_id,))


def show_differential(diagnoser: Diagnoser):
    """Findings on the left, the differential and its explanation on the right; returns the
    case, the cause explained and the entries not used (for the export)."""
    case, problems = validate_what_is_valid(entered(), schema=SCHEMA)
    key, values = model_key(diagnoser), _frozen(case)
    left, right = st.columns([1, 1], gap="large")
    with left:
        st.subheader("Findings")
        st.caption("Every finding starts as *not assessed*; only what you enter is used.")
        inputs(case, problems)
    with right:
        st.subheader("Differential")
        assessment = assess(diagnoser, key, values)
        show_alerts(assessment, problems)
        atypical_slot = st.container()
        if not case and not problems:
            st.info("No findings entered yet: the ranking is that of an average synthetic case. "
                    "Enter findings or load an example case.")
        causes = assessment["causes"][:TOP]
        cause_id = choose_cause(causes, values)
        show_ranking(causes, cause_id)
        st.subheader("Why this cause")
        prior = next((c.prior for c in knowledge().classes if c.id == cause_id), None)
        top = assessment["explanation"]
        show_explanation(top if top.cause_id == cause_id else explained(diagnoser, key, values, cause_id), prior)
        show_next(assessment["next"])
    with atypical_slot:  # asked last, so that it never delays the rest of the page
        show_atypical(atypical_check(diagnoser, key, values))
    return case, cause_id, problems


# -------------------------------------------------------------------------------- about

@st.cache_resource
def knowledge():
    import synthetic

    return synthetic.load_knowledge()


def show_knowledge() -> None:
    kb = knowledge()
    st.caption(f"{kb.title}: {len(kb.classes)} etiology classes from `{kb.source}` (sha256 {kb.sha256[:12]}). "
               "Every number carries its source: `seed:N` is reference N of the review article, "
               "`assumption:` a labelled assumption.")
    names = {c.id: f"{c.name} · {c.icd10 or '—'}" for c in kb.classes}
    class_id = st.selectbox("Etiology class", list(names), format_func=names.get, key="kb_class")
    chosen = kb.class_of(class_id)
    st.markdown(f"### {chosen.name}")
    icd = f"{chosen.icd10}" + (f" ({chosen.icd10_note})" if chosen.icd10_note else "")
    st.markdown(f"**ICD-10-CM:** {icd}  \n**Prior:** {chosen.prior:.1%} — *{chosen.prior_src}*  \n{chosen.summary}")
    if len(chosen.profiles) > 1:
        st.markdown("**Sub-profiles:** " + "; ".join(f"{p.name} ({p.weight:.0%})" for p in chosen.profiles))
    st.markdown("**Key findings** of the class in the knowledge base, most informative first (KL divergence from "
                "all presentations of leg cramps, whose base rates are shown before any age effect)")
    st.dataframe(key_findings(kb, class_id), hide_index=True, width="stretch", column_config={
        "finding": st.column_config.TextColumn(width="medium"),
        "in this class": st.column_config.TextColumn(width="medium"),
        "all presentations": st.column_config.TextColumn(width="medium"),
        "source": st.column_config.TextColumn(width="large"),
    })
    references = cited_references(kb, class_id)
    if references:
        st.markdown("**Seed references behind them**\n" + "".join(f"\n- {r}" for r in references))
    with st.expander("Causes the article names that are not classes"):
        for decision in kb.decisions:
            st.markdown(f"- **{decision['cause']}** — {decision['decision']} into {decision['into']}: {decision['reason']}")


def show_about(diagnoser: Diagnoser) -> None:
    st.header("About this model")
    card, plots, kb = st.tabs(["Model card", "Evaluation", "Knowledge browser"])
    path = Path(diagnoser.path_)
    with card:
        card_file = path / "model_card.md"
        st.markdown(card_file.read_text(encoding="utf-8") if card_file.is_file() else "*The model card is missing from the artifact.*")
        st.markdown("#### How the dashboard uses the model\n"
                    "- Red flags are rules taken from the article's clinical pitfalls, independent of the model (only the "
                    "quinine warning also looks at whether idiopathic cramps rank among the top three).\n"
                    "- *Ask or examine next* weighs each possible answer by its probability under the knowledge base.\n"
                    "- The atypical-case warning compares the entered findings with synthetic cases that have the "
                    "same findings assessed.\n"
                    "- Nothing entered is sent anywhere; models are loaded only from this tool's own verified artifacts.")
    with plots:
        table = model_versus_posterior(diagnoser.manifest_)
        st.markdown("**The model against the exact posterior** of the knowledge base (the ceiling on these cases)")
        if table is not None:
            n = (diagnoser.manifest_.get("metrics") or {}).get("n")
            st.dataframe(table, hide_index=True, column_config={
                "model": st.column_config.NumberColumn(format="%.4f"),
                "exact posterior": st.column_config.NumberColumn(format="%.4f")})
            posterior = diagnoser.manifest_["metrics"]["posterior"]
            st.markdown("".join(f"\n- {name}: {fmt.format(posterior[k])}" for name, k, fmt in AGREEMENT_METRICS if k in posterior))
            st.caption(f"On {n:,} fresh synthetic cases. The exact posterior is the best any model can do on these "
                       "cases; it says how well the model learned the knowledge base, not how it does on patients."
                       if n else "On fresh synthetic cases.")
        else:
            st.caption("See the Evaluation section of the model card.")
        for name, caption in (("calibration.png", "Calibration of the top-ranked cause"),
                              ("confusion_matrix.png", "Confusion matrix, row-normalised (synthetic cases)")):
            if (path / name).is_file():
                st.image(str(path / name), caption=caption)
    with kb:
        show_knowledge()


# ------------------------------------------------------------------------- page frame

def sidebar(diagnoser: Diagnoser | None) -> str:
    with st.sidebar:
        st.markdown("## crampdx")
        view = st.radio("View", VIEWS, key="view")
        if diagnoser is None or view != VIEWS[0]:
            st.caption(DISCLAIMER)
            return view
        examples = {e.id: e for e in load_examples()}
        st.selectbox("Load an example case", ["", *examples],
                     format_func=lambda eid: examples[eid].name if eid else "— choose an example —",
                     key="example", on_change=load_example)
        if st.session_state.get("example") in examples:
            example = examples[st.session_state["example"]]
            st.caption(f"{example.summary} *Illustrates: {knowledge().class_of(example.cause).name}.*")
        loaded = st.session_state.get("loaded")
        changed = loaded is not None and entered() != loaded[1]
        if changed:
            st.caption(f"The findings have changed since *{loaded[0]}* was loaded.")
            st.button("Load it again", on_click=load_again, key="load_again", width="stretch")
        st.button("Clear all", on_click=clear_all, key="clear_all", width="stretch")
        st.divider()
        st.file_uploader("Import a case (JSON)", type=["json"], key="import_file", on_change=import_case,
                         help="A finding → value object, or a report exported here.")
        message = st.session_state.get("import_message")
        if message and not (message[0] == "success" and changed):
            (st.error if message[0] == "error" else st.success)(message[1])
        st.caption(DISCLAIMER)
    return view


def export_buttons(diagnoser: Diagnoser, case, cause_id: str, problems: dict[str, str]) -> None:
    """JSON and printable Markdown of the case, built only when a button is clicked."""
    limits = thread_limits()

    def report() -> dict:
        with limits.limit(limits=1):
            return case_report(diagnoser, case, top=TOP, explain=cause_id, not_used=problems)

    with st.sidebar:
        st.divider()
        st.markdown("**Export this case**")
        st.download_button("Download JSON", data=lambda: json.dumps(report(), indent=2, ensure_ascii=False),
                           file_name="crampdx-case.json", mime="application/json", width="stretch")
        st.download_button("Printable report (Markdown)", data=lambda: markdown_report(report()),
                           file_name="crampdx-report.md", mime="text/markdown", width="stretch")


def keep_entries() -> None:
    """Keep the entries while another view is shown (Streamlit drops the state of widgets
    that are not drawn; re-assigning it marks it as the app's own)."""
    for key in [FINDING + finding.id for finding in SCHEMA] + ["example", "section"]:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def main() -> None:
    st.set_page_config(page_title="crampdx — leg cramps differential", layout="wide")
    keep_entries()
    st.title("crampdx — differential diagnosis of leg cramps")
    st.warning(f"**{DISCLAIMER}**", icon=":material/info:")
    diagnoser = get_diagnoser()
    view = sidebar(diagnoser)
    if diagnoser is None:
        return
    if view == VIEWS[0]:
        case, cause_id, problems = show_differential(diagnoser)
        export_buttons(diagnoser, case, cause_id, problems)
    else:
        show_about(diagnoser)


if __name__ == "__main__":
    main()
