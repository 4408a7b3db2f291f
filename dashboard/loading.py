"""The model, loaded in the background so that the findings form never waits for it.

Importing the model's libraries (scikit-learn, SHAP, pandas) and building the explainers
takes several seconds on two cores, and the findings form needs none of it. The first run
that asks for the model starts one loader thread for the process (``st.cache_resource``): it
imports the model and the pages' renderers, loads and verifies the artifact and answers the
empty case once (which builds the SHAP explainers and fills the per-case cache). A run that
shows results waits for the loader with a note in their place. The note is drawn once: each
element a run sends makes the browser redraw the page, and redrawing the findings form every
quarter second made a busy machine's browser show it seconds later. An entry made
meanwhile is shown in its input at once and answered when the model is ready (the run that
waits then reruns with it). Results come only from a finished load; a failed load is
forgotten, so that the next run tries again (a model trained meanwhile in a terminal).

This module imports nothing heavy: it is on the first page's path.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from crampdx.model import Diagnoser

__all__ = ["LOADING", "forget", "model_loading", "wait_until_loaded"]

# The variable crampdx.model.default_artifact_dir reads: the loader's cache key (importing
# crampdx.model to ask it is the slow part this module avoids).
MODEL_VARIABLE = "CRAMPDX_MODEL"
LOADER_NICENESS = 10
LOADING = "Loading the model… The differential appears here when it is ready; findings can be entered meanwhile."


def _load() -> Diagnoser:
    """The loader thread's work: what a page with results needs, ready before it is shown.

    The thread runs at a lower CPU priority (Linux sets it per thread): on a busy machine the
    browser drawing the form and the sessions' runs go first; on an idle one it changes nothing.
    """
    with suppress(OSError, AttributeError):  # not Linux, or not allowed: the default priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOADER_NICENESS)
    # Imported here, in the loader's thread and not at the top: these imports are most of the
    # cold start, and the first page is drawn without them.
    import crampdx.dashboard.about  # noqa: F401  (the about page's renderers)
    import crampdx.dashboard.differential  # noqa: F401  (the differential's renderers and sidebar)
    import crampdx.dashboard.lifecycle  # noqa: F401  (the no-model page)
    from crampdx.dashboard import resources
    from crampdx.model import Diagnoser, default_artifact_dir

    diagnoser = Diagnoser.load(default_artifact_dir())
    # The first page's answer (builds the SHAP explainers). Not the atypical check: its worker
    # thread would inherit this thread's lower priority for good.
    resources.assess(diagnoser, resources.model_key(diagnoser), ())
    return diagnoser


@st.cache_resource(show_spinner=False)
def _loading(model_variable: str | None) -> Future:
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crampdx-model-loader")
    future = loader.submit(_load)
    loader.shutdown(wait=False)  # the thread ends with the load
    return future


def model_loading() -> Future:
    """The load of the dashboard's model, started by the first caller in this process."""
    return _loading(os.environ.get(MODEL_VARIABLE))


_forgetting = threading.Lock()


def forget(failed: Future | None = None) -> None:
    """Drop the load (a failed one, or a model retrained): the next caller starts a new one.

    With ``failed``, only if that load is still the current one: a session that saw an old load
    fail must not drop the new load another session has started meanwhile.
    """
    with _forgetting:
        if failed is None or model_loading() is failed:
            _loading.clear()


def wait_until_loaded(slot) -> Future:
    """The finished load of the model; until then, :data:`LOADING` in ``slot`` (an ``st.empty``).

    A failed load is forgotten before it is returned; its ``result()`` raises its error.
    """
    future = model_loading()
    if not future.done():
        slot.info(LOADING, icon=":material/hourglass_top:")
        wait([future])
        slot.empty()
    if future.exception() is not None:
        forget(future)
    return future
