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
* Each tree's root histograms are summed over rows grouped by bin
  (:mod:`crampdx.training.histograms`): the same trees, the fit ~1.8x faster.
* Early stopping on validation cases held out of the training cases; the temperature is
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

from crampdx.contract.schema import SchemaError
from crampdx.model.loading import TEMPERATURE_RANGE
from crampdx.training.distill import fit_soft_targets, over_classes, target_classes
from crampdx.training.histograms import grouped_root_histograms

__all__ = ["Hyperparameters", "fit_classifier", "fit_temperature", "iterations_text", "reached_cap"]

Report = Callable[[str], None]
_REPORT_EVERY = 25


@dataclass
class Hyperparameters:
    """Hyperparameters of the gradient-boosting classifier (defaults: the tuned choice)."""

    learning_rate: float = 0.3  # 0.4-0.6 overshoot and stop higher (README, Hyperparameters)
    max_depth: int | None = 3
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 50
    # 3 with 50 cases per leaf: KL 0.028 -> 0.0235 on 100,000 fresh cases against 1 and 100 (README,
    # Hyperparameters); 0.1 diverges
    l2_regularization: float = 3.0
    max_iter: int = 2000
    n_iter_no_change: int = 20
    tol: float = 3e-4  # nats: stop when 20 iterations improve the validation cross-entropy by less
    validation_fraction: float = 0.1  # of the training cases, held out for early stopping

    def estimator(self, seed: int) -> HistGradientBoostingClassifier:
        """The estimator (its loss is set by :func:`crampdx.training.distill.fit_soft_targets`)."""
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            max_iter=self.max_iter,
            early_stopping=True,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            scoring="loss",
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
        the positions with probability in some training case).
    hyperparameters : Hyperparameters
    seed : int
        Seeds the validation cases and the estimator.
    report : callable
        Receives a progress line every ``_REPORT_EVERY`` iterations.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    validation = rng.random(len(codes)) < hyperparameters.validation_fraction
    classes = target_classes(targets[~validation])
    if len(classes) < 3:
        raise SchemaError(f"the cases fitted (all but the {hyperparameters.validation_fraction:.0%} held out for early stopping "
                          f"and the calibration cases) hold only {len(classes)} etiology class(es); training needs at least "
                          "three: add labelled cases of the missing classes or --mix synthetic ones")
    usable = over_classes(targets[validation], classes)[0].sum()
    if usable < len(classes) or (~validation).sum() < len(classes):
        needed = int(np.ceil(len(classes) / hyperparameters.validation_fraction))
        raise SchemaError(f"too few training cases ({len(codes):,}) for {len(classes)} classes: early stopping holds out "
                          f"{hyperparameters.validation_fraction:.0%} of them and needs at least {len(classes)} there; "
                          f"give at least {needed:,} labelled cases or --mix synthetic ones")
    estimator = hyperparameters.estimator(seed)
    report(f"          {int((~validation).sum()):,} cases fitted, {int(validation.sum()):,} for early stopping")
    with contextlib.ExitStack() as stack:
        roots = _grouped_roots_if_supported(stack, report)
        with contextlib.redirect_stdout(_IterationReporter(report)):
            fit_soft_targets(estimator, codes[~validation], targets[~validation], codes[validation], targets[validation])
    if roots is not None and roots[0] == 0:
        report("          (scikit-learn grew its trees without the grouped root histograms: the same model, more slowly)")
    validation_loss = -estimator.validation_score_[-1] if len(estimator.validation_score_) else float("nan")
    report(f"  {iterations_text(estimator.n_iter_, hyperparameters.max_iter)}, validation log loss {validation_loss:.4f}")
    return estimator


def _grouped_roots_if_supported(stack: contextlib.ExitStack, report: Report) -> list[int] | None:
    """Enter :func:`grouped_root_histograms` on ``stack`` and return its root count, or say why
    not and return None: a scikit-learn whose grower builds histograms another way still fits
    (scikit-learn's own histograms give the same trees, only more slowly)."""
    try:
        return stack.enter_context(grouped_root_histograms())
    except RuntimeError as error:
        report(f"          (scikit-learn's own root histograms: {error})")
        return None


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

    result = minimize_scalar(loss, bounds=tuple(np.log(TEMPERATURE_RANGE)), method="bounded")
    return float(np.exp(result.x))
