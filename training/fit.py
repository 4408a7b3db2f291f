"""Fit the gradient-boosting classifier and its temperature.

Design choices (measured in ``bench/bench_training.py``; see the README):

* scikit-learn's ``HistGradientBoostingClassifier`` over the etiology classes. Categorical
  findings enter as their numeric level codes with ``categorical_features=None``: shap's
  TreeExplainer silently ignores native categorical splits (shap issue #3436).
* Shallow trees and many iterations: under the generator the log-posterior is close to a
  sum of per-finding terms, which depth-limited trees approximate well.
* Early stopping on a validation split inside the training cases; the temperature is
  fitted on separate held-out calibration cases: ``softmax(logits / T)`` keeps the ranking
  and keeps SHAP additivity in log-odds, which one-vs-rest isotonic or sigmoid calibration
  would break.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.ensemble import HistGradientBoostingClassifier

__all__ = ["Hyperparameters", "fit_classifier", "fit_temperature", "iterations_text", "reached_cap"]

Report = Callable[[str], None]
_REPORT_EVERY = 25


@dataclass
class Hyperparameters:
    """Hyperparameters of the gradient-boosting classifier (defaults: the tuned choice)."""

    learning_rate: float = 0.15
    max_depth: int | None = 3
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 100
    l2_regularization: float = 5.0
    max_iter: int = 2000
    n_iter_no_change: int = 20
    tol: float = 1e-4  # an improvement of the validation log loss smaller than this does not count
    validation_fraction: float = 0.1

    def estimator(self, seed: int) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            max_iter=self.max_iter,
            early_stopping=True,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            categorical_features=None,  # shap issue #3436: native categorical splits are mis-explained
            random_state=seed,
            verbose=2,  # per-iteration lines, read by fit_classifier for progress
        )


def fit_classifier(
    codes: np.ndarray,
    labels: np.ndarray,
    hyperparameters: Hyperparameters,
    seed: int,
    report: Report = print,
) -> HistGradientBoostingClassifier:
    """Fit with early stopping in one pass, reporting the iteration count as it goes.

    Progress comes from the estimator's own ``verbose`` lines, read as they are printed:
    fitting in warm-started chunks instead would recompute every earlier tree's
    predictions at each chunk.

    Parameters
    ----------
    codes : numpy.ndarray
        Encoded training cases (``Schema.encode``).
    labels : numpy.ndarray
        Class positions (integers).
    hyperparameters : Hyperparameters
    seed : int
        ``random_state`` of the estimator (the validation split and the binning).
    report : callable
        Receives a progress line every ``_REPORT_EVERY`` iterations.
    """
    estimator = hyperparameters.estimator(seed)
    with contextlib.redirect_stdout(_IterationReporter(report)):
        estimator.fit(codes, labels)
    validation = -estimator.validation_score_[-1] if len(estimator.validation_score_) else float("nan")
    report(f"  {iterations_text(estimator.n_iter_, hyperparameters.max_iter)}, validation log loss {validation:.4f}")
    return estimator


def reached_cap(n_iterations: int, max_iter: int) -> bool:
    """Whether boosting ran to ``max_iter`` instead of being stopped early."""
    return int(n_iterations) >= int(max_iter)


def iterations_text(n_iterations: int, max_iter: int) -> str:
    """'stopped early after 312 iterations' or 'reached the --max-iter cap of 20 iterations
    without early stopping' (then more iterations would probably have helped)."""
    if reached_cap(n_iterations, max_iter):
        return f"reached the --max-iter cap of {max_iter} iterations without early stopping"
    return f"stopped early after {n_iterations} iterations"


class _IterationReporter(io.TextIOBase):
    """Turns HistGradientBoosting's verbose lines into a progress line every few iterations."""

    _LINE = re.compile(r"^\[(\d+)/(\d+)\].*?val loss: ([\d.]+)")

    def __init__(self, report: Report):
        self._report = report
        self._buffer = ""
        self._stdout = sys.stdout  # the callback may print: let it reach the real stdout

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            match = self._LINE.match(line.strip())
            if match and int(match.group(1)) % _REPORT_EVERY == 0:
                with contextlib.redirect_stdout(self._stdout):
                    self._report(f"  iteration {int(match.group(1)):4d}  validation log loss {float(match.group(3)):.4f}")
        return len(text)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the log loss of ``softmax(logits / T)`` on held-out cases.

    Parameters
    ----------
    logits : numpy.ndarray
        Raw multi-class scores, shape (n, n_classes).
    labels : numpy.ndarray
        Column index of the true class per row.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(20000, 3)) * 3
    >>> labels = (rng.random(20000)[:, None] > np.cumsum(np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True), 1)).sum(1)
    >>> round(fit_temperature(logits, labels), 1)
    2.0
    """
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        return -log_softmax(logits / np.exp(log_t), axis=1)[rows, labels].mean()

    result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))
