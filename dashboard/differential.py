"""The differential page's results, once the model has loaded: red flags, the ranked causes,
the explanation of the chosen cause and what to ask next in the right column (the findings
form on the left needs no model: :func:`crampdx.dashboard.widgets.findings_column`);
examples, import and export in the sidebar. Every number on it comes from one
:class:`~crampdx.model.Assessment`."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future

import streamlit as st

from crampdx.contract import Case
from crampdx.dashboard import resources
from crampdx.dashboard.state import ASK_NEXT, SCHEMA, adopt, clear_all, entered, import_case, load_again, load_case
from crampdx.dashboard.widgets import finding_input, finding_label
from crampdx.model import Assessment, Diagnoser
from crampdx.model.results import Explanation, NextFinding
from crampdx.render.charts import ranking_chart, waterfall_chart
from crampdx.render.format import cause_label, literal_markdown, percent
from crampdx.render.markdown import assessment_markdown
from crampdx.synthetic.examples import load_examples

__all__ = ["differential_page", "load_example"]

TOP = 10
ALERTS = {"urgent": (st.error, ":material/emergency_home:"), "warning": (st.warning, ":material/warning:"),
          "advice": (st.info, ":material/medication:")}


def show_alerts(assessment: Assessment, problems: dict[str, str]) -> None:
    for flag in assessment.red_flags:
        show, icon = ALERTS[flag.severity]
        because = f" *Because: {', '.join(flag.because)}.*" if flag.because else ""
        show(f"**{flag.title}.** {flag.message}{because}", icon=icon)
    if problems:
        names = ", ".join(SCHEMA[fid].label for fid in problems)
        st.warning(f"Not used until corrected: {names}.")


def show_atypical(slot, future: Future) -> None:
    """The atypical-case check's answer in its place on the page, the last thing a run does.

    The check takes 0.1–0.6 s on idle cores and up to several seconds on busy ones (it scores
    thousands of reference cases), so the page is drawn first and this run waits for the
    answer at its end: no polling, no extra reruns.
    """
    if not future.done():
        slot.caption("Checking how typical this combination of findings is…")
    try:
        atypical = future.result()
    except Exception as error:  # never a traceback: say the check is unavailable
        slot.caption(f"The atypical-case check failed ({type(error).__name__}).")
        return
    if atypical.is_atypical:
        slot.warning(atypical.message, icon=":material/help:")
    else:
        slot.empty()


def choose_cause(causes, values: tuple) -> str:
    """The cause to explain: the top one for each new case, until another is chosen.

    One selectbox per case (its key names the case): the ranked options change with every
    case, and a fresh widget starts at the top cause instead of carrying a stale choice.
    """
    ids = [c.id for c in causes]
    names = {c.id: f"{i}. {cause_label(c)} — {percent(c.probability)}" for i, c in enumerate(causes, 1)}
    key = "explain:" + hashlib.sha1(repr(values).encode()).hexdigest()[:16]
    return st.selectbox("Explain a cause", ids, format_func=names.get, key=key)


def show_explanation(explanation: Explanation, prior: float | None) -> None:
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


def show_next(suggestions: tuple[NextFinding, ...] | None) -> None:
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


def load_example() -> None:
    """The chosen example case replaces the entries (the example selectbox's callback)."""
    chosen = st.session_state.get("example")
    example = next((e for e in load_examples() if e.id == chosen), None)
    if example is not None:
        load_case(dict(example.case.values), example.name)
        st.session_state.pop("import_message", None)


def case_sidebar() -> None:
    """Examples, clear all and import."""
    examples = {e.id: e for e in load_examples()}
    st.selectbox("Load an example case", ["", *examples],
                 format_func=lambda eid: examples[eid].name if eid else "— choose an example —",
                 key="example", on_change=load_example)
    if st.session_state.get("example") in examples:
        example = examples[st.session_state["example"]]
        st.caption(f"{example.summary} *Illustrates: {resources.knowledge().class_of(example.cause).name}.*")
    loaded = st.session_state.get("loaded")
    changed = loaded is not None and entered() != loaded[1]
    if changed:
        st.caption(f"The findings have changed since *{literal_markdown(loaded[0])}* was loaded.")
        st.button("Load it again", on_click=load_again, key="load_again", width="stretch")
    st.button("Clear all", on_click=clear_all, key="clear_all", width="stretch")
    st.divider()
    st.file_uploader("Import a case (JSON)", type=["json"], key="import_file", on_change=import_case,
                     help="A finding → value object, or an assessment exported here.")
    message = st.session_state.get("import_message")
    if message and not (message[0] == "success" and changed):
        (st.error if message[0] == "error" else st.success)(literal_markdown(message[1]))  # it quotes the file


def export_buttons(diagnoser: Diagnoser, case: Case, cause_id: str, problems: dict[str, str]) -> None:
    """JSON and printable Markdown of the case's assessment, built only when a button is clicked."""
    limits = resources.thread_limits()

    def assessment() -> Assessment:
        with limits.limit(limits=1):
            return diagnoser.assess(case, top=TOP, explain=[cause_id], next_findings=resources.NEXT_FINDINGS,
                                    not_used=problems)

    st.divider()
    st.markdown("**Export this case**")
    st.download_button("Download JSON", data=lambda: json.dumps(assessment().to_dict(), indent=2, ensure_ascii=False, allow_nan=False),
                       file_name="crampdx-case.json", mime="application/json", width="stretch")
    st.download_button("Printable report (Markdown)", data=lambda: assessment_markdown(assessment()),
                       file_name="crampdx-report.md", mime="text/markdown", width="stretch")


def differential_page(diagnoser: Diagnoser, case: Case, problems: dict[str, str], right) -> None:
    """The differential of ``case`` and its explanation in the ``right`` column, the case's
    tools in the sidebar."""
    with st.sidebar:
        case_sidebar()
    key, values = resources.model_key(diagnoser), tuple(sorted(case.values.items()))
    with right:
        assessment = resources.assess(diagnoser, key, values)
        show_alerts(assessment, problems)
        atypical_slot = st.empty()
        if not case and not problems:
            st.info("No findings entered yet: the ranking is that of an average synthetic case. "
                    "Enter findings or load an example case.")
        causes = assessment.causes[:TOP]
        cause_id = choose_cause(causes, values)
        frame, spec = ranking_chart(causes, cause_id)
        st.vega_lite_chart(frame, spec, width="stretch", height=spec["height"])
        st.subheader("Why this cause")
        prior = resources.knowledge().class_of(cause_id).prior
        explanation = assessment.explanation(cause_id) or resources.explained(diagnoser, key, values, cause_id)
        show_explanation(explanation, prior)
        show_next(assessment.next_findings)
    with st.sidebar:
        export_buttons(diagnoser, case, cause_id, problems)
    show_atypical(atypical_slot, resources.atypical_check(diagnoser, key, values))  # last: it never delays the page
