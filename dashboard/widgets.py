"""The findings form: one widget per finding, built from the finding schema.

It needs no model, and this module imports nothing heavy (the contract only): the form is
the first thing a fresh page shows, before the model has loaded.
"""

from __future__ import annotations

import streamlit as st

from crampdx.contract import Case, validate_what_is_valid
from crampdx.dashboard.pacing import FORM_DRAWN
from crampdx.dashboard.state import FINDING, NA, SCHEMA, entered

__all__ = ["finding_input", "finding_label", "findings_column", "findings_form"]

GROUPS = {"demographics": "Demographics", "comorbidities": "Comorbidities", "medications": "Medications",
          "context": "Context"}
LABELS = {f.id: {NA: "not assessed", **{level.id: level.label for level in f.levels}} for f in SCHEMA}
# A session's first run draws only the inputs a screen shows (the History tab has 44): the browser
# spent ~0.45 s more of its main thread drawing all 44 than the first 11 (README, Dashboard
# 2026-12-03), before a finding could be entered. The run that follows draws them all.
FIRST_RUN_INPUTS = 12
MORE_FOLLOW = "More findings follow in a moment."


def finding_label(finding) -> str:
    """A finding's label, with unit and reference range for measurements."""
    if not finding.is_numeric:
        return finding.label
    if finding.section in ("laboratory", "examination"):
        low, high = finding.reference
        d = finding.decimals
        return f"{finding.label} ({finding.unit}; reference {low:.{d}f}–{high:.{d}f})"
    return f"{finding.label} ({finding.unit})"


NUMERIC_PLACEHOLDER = "not assessed · a number, or low / normal / high, or a bound such as <3.5"


def finding_input(finding, key: str, *, label: str | None = None, collapsed: bool = False, **callback) -> None:
    """One finding's widget: a measurement as text (empty = not assessed; a number with a
    decimal point or comma, a result known only in words, or a bound), or a choice that
    starts at 'not assessed'."""
    label = label or finding_label(finding)
    visibility = "collapsed" if collapsed else "visible"
    if finding.is_numeric:
        st.text_input(label, key=key, placeholder=NUMERIC_PLACEHOLDER, help=finding.help, label_visibility=visibility,
                      **callback)
    elif finding.kind == "binary":
        st.radio(label, (NA, "present", "absent"), format_func=LABELS[finding.id].get, horizontal=True,
                 key=key, help=finding.help, label_visibility=visibility, **callback)
    else:
        st.selectbox(label, (NA, *finding.level_ids), format_func=LABELS[finding.id].get, key=key,
                     help=finding.help, label_visibility=visibility, **callback)


def findings_form(case: Case, problems: dict[str, str]) -> None:
    """Findings entry in the seed's order: history, examination, laboratory, background.

    Only the open section's inputs are drawn (the tabs rerun the script when switched), which
    keeps a rerun fast; the other sections' entries are kept by
    :func:`crampdx.dashboard.state.keep_entries`. A session's first run
    (:mod:`crampdx.dashboard.pacing`) draws only the first :data:`FIRST_RUN_INPUTS`.
    """
    shown = None if st.session_state.get(FORM_DRAWN) else FIRST_RUN_INPUTS
    tabs = st.tabs(list(SCHEMA.sections.values()), key="section", on_change="rerun")
    for tab, section in zip(tabs, SCHEMA.sections):
        with tab:
            entered_here = sum(f.id in case for f in SCHEMA.in_section(section))
            if tab.open is False:
                continue
            st.caption(f"{entered_here} of {len(SCHEMA.in_section(section))} entered")
            group = None
            for number, finding in enumerate(SCHEMA.in_section(section)):
                if shown is not None and number == shown:
                    st.caption(MORE_FOLLOW)
                    break
                if finding.group and finding.group != group:
                    group = finding.group
                    st.markdown(f"**{GROUPS.get(group, group)}**")
                finding_input(finding, FINDING + finding.id)
                if finding.id in problems:
                    # crampdx.render imports the model's libraries: only once an entry needs quoting
                    from crampdx.render.format import literal_markdown

                    st.error(f"{finding.label}: {literal_markdown(problems[finding.id])}")  # it quotes the entry
                elif finding.is_numeric and finding.id in case:
                    st.caption(f"Read as: {case.describe(finding.id)}")


def findings_column():
    """The page's two columns with the findings form in the left one.

    Returns
    -------
    tuple
        The case (what is valid of the entries), the problems (finding id -> why it is not
        used) and the right column, headed "Differential", for the results.
    """
    case, problems = validate_what_is_valid(entered(), schema=SCHEMA)
    left, right = st.columns([1, 1], gap="large")
    with left:
        st.subheader("Findings")
        # Bold, not italics: the first page's only italics made a new browser fetch a font (138 kB).
        st.caption("Every finding starts as **not assessed**; only what you enter is used.")
        findings_form(case, problems)
    right.subheader("Differential")
    return case, problems, right
