"""Fit the gradient-boosting classifier and its temperature.

Design choices (measured in ``bench/bench_training.py``; see the README):

* scikit-learn's ``HistGradientBoostingClassifier`` over the etiology classes. Categorical
  findings enter as their numeric level codes with ``categorical_features=None``: shap's
  TreeExplainer silently ignores native categorical splits (shap issue #3436).
* Shallow trees and many iterations: under the generator the log-posterior is close to a
  sum of per-finding terms, which depth-limited trees approximate well.
* Soft targets (:mod:`crampdx.training.distill`): a synthetic case is fitted to its exact
  posterior rather than to its one sampled label; a user's labelled case is a posterior
  with all its mass on its label.
* Early stopping on validation cases held out of the training cases (all rows of a case on
  one side); the temperature is fitted on separate held-out calibration cases: ``softmax(logits / T)`` keeps the ranking
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

from crampdx.contract.schema import SchemaError
from crampdx.training.distill import DEFAULT_THRESHOLD, soft_target_rows

__all__ = ["Hyperparameters", "fit_classifier", "fit_temperature", "iterations_text", "reached_cap"]

Report = Callable[[str], None]
_REPORT_EVERY = 25


@dataclass
class Hyperparameters:
    """Hyperparameters of the gradient-boosting classifier (defaults: the tuned choice)."""

    learning_rate: float = 0.3  # soft targets carry no label noise: larger steps, half the iterations (bench/bench_training.py)
    max_depth: int | None = 3
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 100
    l2_regularization: float = 5.0
    max_iter: int = 2000
    n_iter_no_change: int = 20
    tol: float = 1e-4  # an improvement of the validation log loss smaller than this does not count
    validation_fraction: float = 0.1  # of the training cases, held out for early stopping
    soft_threshold: float = DEFAULT_THRESHOLD  # classes at least this probable get a training row of their own

    def estimator(self, seed: int, rows_per_case: float = 1.0) -> HistGradientBoostingClassifier:
        """The estimator; ``min_samples_leaf`` counts cases, so it is scaled to rows."""
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=max(1, round(self.min_samples_leaf * rows_per_case)),
            l2_regularization=self.l2_regularization,
            max_iter=self.max_iter,
            early_stopping=True,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            categorical_features=None,  # shap issue #3436: native categorical splits are mis-explained
            random_state=seed,
            verbose=2,  # per-iteration lines, read by fit_classifier for progress
        )


def fit_classifier(
    codes: np.ndarray,
    targets: np.ndarray,
    hyperparameters: Hyperparameters,
    seed: int,
    report: Report = print,
) -> HistGradientBoostingClassifier:
    """Fit to soft targets with early stopping in one pass, reporting the iteration count as it goes.

    Progress comes from the estimator's own ``verbose`` lines, read as they are printed:
    fitting in warm-started chunks instead would recompute every earlier tree's
    predictions at each chunk.

    Parameters
    ----------
    codes : numpy.ndarray
        Encoded training cases (``Schema.encode``), shape (n, n_findings).
    targets : numpy.ndarray
        Shape (n, n_classes): each case's exact posterior, or a one-hot row for a labelled
        case. Column ``k`` is the class at position ``k`` (the estimator's ``classes_`` are
        the positions that received a row).
    hyperparameters : Hyperparameters
    seed : int
        Seeds the validation cases, the rows drawn for improbable classes, and the estimator.
    report : callable
        Receives a progress line every ``_REPORT_EVERY`` iterations.
    """
    validation_rng, rows_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    validation = validation_rng.random(len(codes)) < hyperparameters.validation_fraction
    fit_rows = soft_target_rows(targets[~validation], rows_rng, hyperparameters.soft_threshold)
    val_rows = soft_target_rows(targets[validation], rows_rng, hyperparameters.soft_threshold)
    fit_codes, val_codes = codes[~validation], codes[validation]
    seen = np.isin(val_rows.label, fit_rows.label)  # a class no training row has cannot be scored
    if not seen.any() or validation.all():
        raise SchemaError(f"too few training cases ({len(codes):,}) to hold some out for early stopping; "
                          "give at least 100 labelled cases")
    estimator = hyperparameters.estimator(seed, fit_rows.rows_per_case)
    report(f"          {len(fit_rows.case):,} rows for {int((~validation).sum()):,} cases "
           f"({fit_rows.rows_per_case:.1f} per case); {int(validation.sum()):,} cases for early stopping")
    with contextlib.redirect_stdout(_IterationReporter(report)):
        estimator.fit(fit_codes[fit_rows.case], fit_rows.label, sample_weight=fit_rows.weight,
                      X_val=val_codes[val_rows.case[seen]], y_val=val_rows.label[seen],
                      sample_weight_val=val_rows.weight[seen])
    validation_loss = -estimator.validation_score_[-1] if len(estimator.validation_score_) else float("nan")
    report(f"  {iterations_text(estimator.n_iter_, hyperparameters.max_iter)}, validation log loss {validation_loss:.4f}")
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


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature T minimising the log loss of ``softmax(logits / T)`` on held-out cases.

    Parameters
    ----------
    logits : numpy.ndarray
        Raw multi-class scores, shape (n, n_classes).
    targets : numpy.ndarray
        Column index of the true class per row, shape (n,), or the probability of each
        class per row (the exact posterior), shape (n, n_classes): then the loss is the
        cross-entropy, whose minimum is not blurred by the noise of sampled labels.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import softmax
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(20000, 3)) * 3
    >>> truth = softmax(logits / 2, axis=1)
    >>> labels = (rng.random(20000)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    >>> round(fit_temperature(logits, labels), 1), round(fit_temperature(logits, truth), 3)
    (2.0, 2.0)
    """
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = np.eye(logits.shape[1])[targets]

    def loss(log_t: float) -> float:
        return -(targets * log_softmax(logits / np.exp(log_t), axis=1)).sum(axis=1).mean()

    result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))
