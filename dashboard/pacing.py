"""A session's first run draws the findings form and no results; the browser asks for them.

A browser draws the elements a run sends together: with the results in the first run (two
charts, the ask-next inputs, the sidebar's examples, upload and downloads) a new session's
form could be used after 2.6–3.0 s, with the form alone after 2.0–2.1 s, and the bare
one-selectbox page after 1.6–1.8 s (medians of new browser contexts on warm servers taking
turns, on this 2-core machine, 2026-12-03; the browser's main thread spent most of it
rendering). So the first run of a session ends after the form with a one-shot
timer, a fragment with ``run_every``: its first tick, :data:`RESULTS_AFTER_S` after the
browser received the run (later while the browser is busy: a timer waits for its page's
scripts), reruns the whole page, which draws the results. A full run clears the browser's
timers and draws no timer again, so it ticks once. On a cold server the model's load starts
with that second run, after the form, instead of competing with the first page for the cores.

A session's later runs (an entry, another page) draw everything at once. Without a browser
(``streamlit.testing``), the next ``run()`` is the tick.

This module imports nothing heavy: it is on the first page's path.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["FORM_DRAWN", "RESULTS_AFTER_S", "RESULTS_FOLLOW", "form_first"]

FORM_DRAWN = "form_drawn"  # session state: a run of this session has drawn the form to its end
# Measured: after 0.15–0.3 s the tick often came while the browser was still fetching the
# form's widgets (main thread idle) and the results, or on a cold server the model's load,
# delayed the form again; after 0.8 s a tick carried the drawn form's 44 widget states (the
# form was on screen), and the differential of a warm server came 0.2 s later than after 0.4 s.
RESULTS_AFTER_S = 0.8
RESULTS_FOLLOW = "The differential follows in a moment."


@st.fragment(run_every=RESULTS_AFTER_S)
def _ask_for_the_results() -> None:
    if st.session_state.get(FORM_DRAWN):  # a tick of the browser's timer, not the first run drawing it
        st.rerun(scope="app")


def form_first() -> bool:
    """True in a session's first run, which ends after the findings form (call it after
    drawing the form, inside the results' column): a note, and the timer whose tick draws
    the results. False in every later run: draw the results."""
    if st.session_state.get(FORM_DRAWN):
        return False
    st.caption(RESULTS_FOLLOW)
    _ask_for_the_results()
    st.session_state[FORM_DRAWN] = True
    return True
