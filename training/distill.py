"""Soft targets: training rows that carry each synthetic case's exact posterior.

A sampled label is one draw from p(class | findings); the generator knows that distribution
exactly (:func:`crampdx.synthetic.posterior_from_codes`), so the classifier can learn from it
instead (knowledge distillation). scikit-learn's gradient boosting takes one label per row, so
a case becomes several rows with the same findings, one per probable class, weighted by its
probability: the weighted multinomial log loss of those rows is the cross-entropy between
the exact posterior and the model, whose gradient ``q - p`` is the soft target's. Classes
below ``threshold`` are not given a row each: one row drawn from them in proportion to their
probabilities carries their whole mass, so every class keeps its expected weight (unbiased)
while a case needs a handful of rows instead of one per class.

``min_samples_leaf`` counts rows, not weight (scikit-learn issue #34745), so the leaf minimum
is scaled by the mean number of rows per case (:func:`rows_per_case`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SoftRows", "soft_target_rows"]

DEFAULT_THRESHOLD = 0.1


@dataclass(frozen=True)
class SoftRows:
    """Training rows for soft targets: case ``case[i]`` with label ``label[i]`` and weight
    ``weight[i]``; rows of one case are adjacent and their weights sum to 1."""

    case: np.ndarray
    label: np.ndarray
    weight: np.ndarray

    @property
    def rows_per_case(self) -> float:
        """Mean number of rows per case."""
        return len(self.case) / max(1, len(np.unique(self.case)))


def soft_target_rows(posterior: np.ndarray, rng: np.random.Generator, threshold: float = DEFAULT_THRESHOLD) -> SoftRows:
    """Rows whose weighted labels reproduce each case's posterior.

    Parameters
    ----------
    posterior : numpy.ndarray
        Shape (n_cases, n_classes), rows summing to 1.
    rng : numpy.random.Generator
        Draws the one row that carries the classes below ``threshold``.
    threshold : float
        Classes at least this probable get a row of their own.

    Returns
    -------
    SoftRows

    Examples
    --------
    >>> import numpy as np
    >>> posterior = np.array([[0.90, 0.09, 0.006, 0.004], [0.5, 0.5, 0.0, 0.0]])
    >>> rows = soft_target_rows(posterior, np.random.default_rng(0), threshold=0.05)
    >>> rows.case.tolist(), rows.label[:2].tolist(), rows.label[3:].tolist()
    ([0, 0, 0, 1, 1], [0, 1], [0, 1])
    >>> rows.weight.round(3).tolist()
    [0.9, 0.09, 0.01, 0.5, 0.5]
    """
    posterior = np.asarray(posterior, dtype=float)
    own = posterior >= threshold
    case, label = np.nonzero(own)
    weight = posterior[case, label]
    tail = np.where(own, 0.0, posterior)
    mass = tail.sum(axis=1)
    carried = np.flatnonzero(mass > 0)
    cumulative = np.cumsum(tail[carried], axis=1) / mass[carried, None]
    drawn = (rng.random(len(carried))[:, None] > cumulative).sum(axis=1)
    drawn = np.minimum(drawn, posterior.shape[1] - 1)
    case = np.concatenate([case, carried])
    order = np.argsort(case, kind="stable")
    return SoftRows(case[order], np.concatenate([label, drawn])[order], np.concatenate([weight, mass[carried]])[order])
