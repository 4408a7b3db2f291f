"""A session's first run draws the findings form and no results; the browser asks for them.

A browser draws the elements a run sends together: with the results in the first run (two
charts, the ask-next inputs, the sidebar's examples, upload and downloads) a new session's
form could be used after 2.6–3.0 s, with the form alone after 2.0–2.1 s, and the bare
one-selectbox page after 1.6–1.8 s (medians of new browser contexts on warm servers taking
turns, on this 2-core machine, 2026-12-03; the browser's main thread spent most of it
rendering). So the first run of a session ends after the form with a one-shot
timer, a fragment with ``run_every``: its first tick, :data:`RESULTS_AFTER_S` after the
browser received the run (later while the browser is busy: a timer waits for its page's
scripts), reruns the whole page, which draws the results, once the tick shows that the
browser has drawn the form (it carries the state of every finding's input the first run drew;
a browser sends a widget's state once it has drawn it). A tick that comes earlier, while the
browser is still drawing the form (measured on a busy machine: the first tick often carried
no widget state at all, and the results then drew with the form, 1-2 s later), does nothing
and the timer ticks again; after :data:`MAX_EARLY_TICKS` such ticks the results come anyway.
A full run clears the browser's timers and draws no timer again. On a cold server the model's load starts
with that second run, after the form, instead of competing with the first page for the cores.

A session's later runs (an entry, another page) draw everything at once. Without a browser
(``streamlit.testing``), the next ``run()`` is the tick.

This module imports nothing heavy: it is on the first page's path.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from crampdx.dashboard.state import FINDING

__all__ = ["FORM_DRAWN", "RESULTS_AFTER_S", "RESULTS_FOLLOW", "form_first"]

FORM_DRAWN = "form_drawn"  # session state: a run of this session has drawn the form to its end
# Measured: after 0.15–0.3 s the tick often came while the browser was still fetching the
# form's widgets (main thread idle) and the results, or on a cold server the model's load,
# delayed the form again; after 0.8 s a tick carried the drawn form's 44 widget states (the
# form was on screen), and the differential of a warm server came 0.2 s later than after 0.4 s.
RESULTS_AFTER_S = 0.8
RESULTS_FOLLOW = "The differential follows in a moment."
MAX_EARLY_TICKS = 3  # then the results come even if the browser has not reported the form
EARLY_TICKS = "early_ticks"  # session state: ticks that came before the browser had drawn the form
FORM_INPUTS = "form_inputs"  # session state: the ids of the findings' inputs the first run drew


def _widget_states(ctx, sent: bool) -> set[str] | None:
    """The ids of the findings' inputs drawn in this run (``sent`` False) or whose state the
    browser sent with this run (True); None if this Streamlit keeps them elsewhere (private
    attributes: tests/test_dashboard_cold_start.py checks they are there)."""
    try:
        ids = ctx.session_state._state._new_widget_state.states if sent else ctx.shared.widget_ids_this_run.snapshot()
    except AttributeError:
        return None
    return {wid for wid in ids if f"-{FINDING}" in wid}  # a widget's id ends with its key


def form_on_screen(drawn, sent) -> bool:
    """Whether the browser has drawn the form: it sent the state of every finding's input the
    first run drew (True when either is unknown)."""
    return drawn is None or sent is None or set(drawn) <= set(sent)


@st.fragment(run_every=RESULTS_AFTER_S)
def _ask_for_the_results() -> None:
    if not st.session_state.get(FORM_DRAWN):  # the first run drawing the timer, not a tick
        return
    early = st.session_state.get(EARLY_TICKS, 0)
    drawn = st.session_state.get(FORM_INPUTS)
    if early < MAX_EARLY_TICKS and not form_on_screen(drawn, _widget_states(get_script_run_ctx(), sent=True)):
        st.session_state[EARLY_TICKS] = early + 1  # the browser is still drawing the form: the next tick
        return
    st.rerun(scope="app")


def form_first() -> bool:
    """True in a session's first run, which ends after the findings form (call it after
    drawing the form, inside the results' column): a note, and the timer whose tick draws
    the results. False in every later run: draw the results."""
    if st.session_state.get(FORM_DRAWN):
        return False
    st.caption(RESULTS_FOLLOW)
    drawn = _widget_states(get_script_run_ctx(), sent=False)
    _ask_for_the_results()
    st.session_state[FORM_INPUTS] = drawn
    st.session_state[FORM_DRAWN] = True
    return True
