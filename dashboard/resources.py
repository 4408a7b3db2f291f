"""What the dashboard keeps per process besides the model (loaded by
:mod:`crampdx.dashboard.loading`): the knowledge base, the thread pools, and the per-case
answers (cached by the case's values).

The Diagnoser is shared by every session; it is thread-safe (its SHAP explainer is guarded
by a lock). Per-case work runs with one OpenMP and one BLAS thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st
from threadpoolctl import ThreadpoolController

from crampdx.model import Assessment, Diagnoser
from crampdx.model.results import Atypicality, Explanation
from crampdx.synthetic import KnowledgeBase, load_knowledge

__all__ = ["assess", "atypical_check", "explained", "knowledge", "model_key", "thread_limits", "training_lock"]

NEXT_FINDINGS = 5


@st.cache_resource
def knowledge() -> KnowledgeBase:
    return load_knowledge()


@st.cache_resource
def training_lock() -> threading.Lock:
    return threading.Lock()


@st.cache_resource
def thread_limits() -> ThreadpoolController:
    """Per-case work runs with one OpenMP and one BLAS thread. A case is one row (or a few
    hundred), so more threads save nothing, while idle OpenMP and OpenBLAS workers spin after
    each call and take the second core from the next rerun: several times slower reruns."""
    return ThreadpoolController()


def model_key(diagnoser: Diagnoser) -> str:
    return f"{diagnoser.path_}:{diagnoser.manifest_.get('model_sha256')}"


# Per-case answers, cached by (model, the case's values): a rerun that does not change the
# case (choosing another cause, switching a section) costs nothing, and going back to an
# earlier case is instant. The Diagnoser is shared, not hashed (leading underscore).
@st.cache_data(max_entries=512, show_spinner=False)
def assess(_diagnoser: Diagnoser, key: str, values: tuple) -> Assessment:
    """The assessment of a case: differential, red flags, the top cause's explanation and
    the next findings (the atypical check runs apart, in the background)."""
    with thread_limits().limit(limits=1):
        return _diagnoser.assess(dict(values), explain=1, next_findings=NEXT_FINDINGS, atypical=False)


@st.cache_data(max_entries=512, show_spinner=False)
def explained(_diagnoser: Diagnoser, key: str, values: tuple, cause_id: str) -> Explanation:
    with thread_limits().limit(limits=1):
        return _diagnoser.explain(dict(values), cause_id)


@st.cache_resource
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="crampdx-atypical")


def _atypical(diagnoser: Diagnoser, values: dict) -> Atypicality:
    with thread_limits().limit(limits=1):
        return diagnoser.atypical(values)


@st.cache_resource(max_entries=512, show_spinner=False)
def atypical_check(_diagnoser: Diagnoser, key: str, values: tuple) -> Future:
    """The atypical-case check of a case (the slowest question: median 0.09 s on idle cores,
    0.6 s with a result known only in words, about 1 s and 5.6 s on two busy cores; it scores
    thousands of reference cases), run once per case and shared by all sessions, one at a
    time so that it never takes both cores from the rankings; the page waits for it after
    everything else is drawn."""
    return _background().submit(_atypical, _diagnoser, dict(values))
