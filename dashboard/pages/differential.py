"""Page: the findings form at once; the differential of the entered findings from the
session's second run on (crampdx.dashboard.pacing), once the model has loaded (in the
background: crampdx.dashboard.loading)."""

import streamlit as st

from crampdx.dashboard.loading import wait_until_loaded
from crampdx.dashboard.pacing import form_first
from crampdx.dashboard.widgets import findings_column

case, problems, right = findings_column()
with right:
    first_run = form_first()
if not first_run:
    with right:
        loaded = wait_until_loaded(st.empty())
        # The model's modules, imported by the loader meanwhile: only now, after the form.
        from crampdx.dashboard.lifecycle import get_diagnoser

        diagnoser = get_diagnoser(loaded)
    if diagnoser is not None:
        from crampdx.dashboard.differential import differential_page

        differential_page(diagnoser, case, problems, right)
