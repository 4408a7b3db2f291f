"""The model's life in the dashboard: the verified default model once its background load
has finished (:mod:`crampdx.dashboard.loading`), or an offer to train it.

Visitors never see a server path: an error whose text names the model directory is shown
as a public sentence, and the full sentence goes to the server log for the operator.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path

import streamlit as st

from crampdx.model import ArtifactError, Diagnoser, default_artifact_dir
from crampdx.model.artifact import MANIFEST_FILE
from crampdx.dashboard.loading import forget, wait_until_loaded
from crampdx.dashboard.resources import training_lock
from crampdx.training.train import train

__all__ = ["get_diagnoser", "public_line"]

LOG = logging.getLogger(__name__)
MODEL_DIRECTORY = "the dashboard's model directory"
NO_MODEL = ("No trained model yet: the dashboard's model directory holds none (the server log names the "
            "directory).")
UNUSABLE_MODEL = ("The trained model could not be used (it is damaged, of an older format or from another version "
                  "of crampdx); the server log says why. Train it again below, or with `crampdx train`.")


def public_line(text: str, directory: Path) -> str:
    """A line about the model directory with the directory's path replaced by words.

    Examples
    --------
    >>> public_line("[5/5] save      /srv/crampdx/model", Path("/srv/crampdx/model"))
    "[5/5] save      the dashboard's model directory"
    """
    for spelling in sorted({str(directory), str(directory.expanduser().resolve())}, key=len, reverse=True):
        text = text.replace(spelling, MODEL_DIRECTORY)
    return text


def get_diagnoser(loaded: Future | None = None) -> Diagnoser | None:
    """The model, or an explanation with a button that trains the default one.

    ``loaded`` is the finished load when the caller waited for it; else this waits, with a
    note where the answer will be.
    """
    path = default_artifact_dir()
    loaded = loaded or wait_until_loaded(st.empty())
    try:
        return loaded.result()
    except ArtifactError as error:  # its sentence names the directory: the log only
        LOG.warning("The dashboard has no usable model: %s", error)
        st.error(UNUSABLE_MODEL if (path / MANIFEST_FILE).exists() else NO_MODEL)
    except Exception:  # the loader also imports the pages and answers a first case: never a traceback here
        LOG.exception("Loading the dashboard's model failed")
        st.error(UNUSABLE_MODEL)
    st.write(f"The dashboard needs a trained model. It can train one now from synthetic cases into {MODEL_DIRECTORY} "
             "(about a minute on two cores), as `crampdx train` does for the default model.")
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
                train(path, report=lambda line: st.text(public_line(line, path)))
            except Exception as error:  # one sentence without a path for the visitor; the details in the log
                LOG.exception("Training the dashboard's model into %s failed", path)
                status.update(label="Training failed", state="error")
                st.error(f"Training failed ({type(error).__name__}); the server log says why. "
                         "Try `crampdx train` in a terminal.")
                return
            status.update(label=f"Default model trained into {MODEL_DIRECTORY}", state="complete", expanded=False)
    finally:
        lock.release()
    forget()
    st.rerun()
