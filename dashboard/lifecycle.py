"""The model's life in the dashboard: load the verified default model, or offer to train it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from crampdx.model import ArtifactError, Diagnoser, default_artifact_dir
from crampdx.dashboard.resources import load_diagnoser, training_lock
from crampdx.training.train import train

__all__ = ["get_diagnoser"]


def get_diagnoser() -> Diagnoser | None:
    """The model, or an explanation with a button that trains the default one."""
    path = default_artifact_dir()
    try:
        return load_diagnoser(str(path))
    except ArtifactError as error:
        st.error(str(error))
    st.write(f"The dashboard needs a trained model. It can train the default one now from synthetic cases "
             f"into `{path}` (a few minutes on two cores), as `crampdx train` does.")
    if st.button("Train the default model", type="primary"):
        _train_default(path)
    return None


def _train_default(path: Path) -> None:
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
