"""Evaluation figures: how good the model is, and how close to the exact posterior.

Everything is computed with scikit-learn's metrics where one exists; the expected
calibration error and the posterior comparison are the few lines scikit-learn lacks.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

__all__ = ["calibration_bins", "calibration_bins_against_posterior", "calibration_error_against_posterior",
           "classification_metrics", "expected_calibration_error", "posterior_comparison"]

_EPS = 1e-15
N_BINS = 15


def calibration_bins(y: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS) -> dict[str, list[float]]:
    """Reliability of the top-class probability in equal-width bins.

    Returns
    -------
    dict
        ``confidence`` (mean top-class probability), ``accuracy`` (how often the top
        class was right) and ``count`` per non-empty bin.
    """
    return _binned(proba.max(axis=1), proba.argmax(axis=1) == y, n_bins)


def calibration_bins_against_posterior(proba: np.ndarray, posterior: np.ndarray,
                                       n_bins: int = N_BINS) -> dict[str, list[float]]:
    """:func:`calibration_bins` with each case's hit or miss replaced by the exact posterior
    probability of the model's top class: ``accuracy`` is then what the bin's accuracy is
    expected to be under the generator, without the noise of the sampled labels."""
    return _binned(proba.max(axis=1), _expected_hits(proba, posterior), n_bins)


def _expected_hits(proba: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    """Each case's hit or miss replaced by its expectation: the exact posterior probability of
    the model's top class."""
    return posterior[np.arange(len(posterior)), proba.argmax(axis=1)]


def _binned(confidence: np.ndarray, hits: np.ndarray, n_bins: int) -> dict[str, list[float]]:
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    out = {"confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            out["confidence"].append(float(confidence[mask].mean()))
            out["accuracy"].append(float(hits[mask].mean()))
            out["count"].append(int(mask.sum()))
    return out


def _weighted_gap(bins: dict[str, list[float]]) -> float:
    counts = np.asarray(bins["count"], dtype=float)
    gaps = np.abs(np.asarray(bins["accuracy"]) - np.asarray(bins["confidence"]))
    return float((counts * gaps).sum() / counts.sum())


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error of the top-class probability (equal-width bins).

    ``sum_b (n_b / n) * |accuracy_b - confidence_b|``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1])
    >>> round(expected_calibration_error(y, np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])), 6)
    0.1
    """
    return _weighted_gap(calibration_bins(y, proba, n_bins))


def calibration_error_against_posterior(proba: np.ndarray, posterior: np.ndarray, n_bins: int = N_BINS) -> float:
    """The expected calibration error with each case's hit or miss replaced by the exact
    posterior probability of the model's top class (the hit's expectation).

    From sampled labels, even the exact posterior scores above zero: its ECE on 20,000
    synthetic cases is sampling noise of 0.006-0.011. Against the posterior, the exact
    posterior scores 0 and a model scores its own miscalibration with respect to the
    generator (up to the binning): the default model 0.0032 with a standard deviation of
    0.0004 over ten sets of 20,000 cases (README, "Evaluation, 2026-12-04, evening").

    Examples
    --------
    >>> import numpy as np
    >>> exact = np.array([[0.8, 0.2], [0.6, 0.4]])
    >>> calibration_error_against_posterior(exact, exact)
    0.0
    >>> overconfident = np.array([[0.9, 0.1], [0.1, 0.9]])  # says 0.9 for causes the posterior gives 0.8 and 0.4
    >>> round(calibration_error_against_posterior(overconfident, exact), 6)
    0.3
    """
    return _weighted_gap(calibration_bins_against_posterior(proba, posterior, n_bins))


def classification_metrics(y: np.ndarray, proba: np.ndarray, class_ids: list[str]) -> dict:
    """Top-1/top-3 accuracy, log loss, multi-class Brier score, ECE, per-class precision
    and recall, and the confusion matrix (rows: true class, columns: predicted)."""
    labels = np.arange(len(class_ids))
    predicted = proba.argmax(axis=1)
    precision, recall, _, support = precision_recall_fscore_support(y, predicted, labels=labels, zero_division=0)
    return {
        "n": int(len(y)),
        "top1_accuracy": float(top_k_accuracy_score(y, proba, k=1, labels=labels)),
        "top3_accuracy": float(top_k_accuracy_score(y, proba, k=3, labels=labels)),
        "log_loss": float(log_loss(y, np.clip(proba, _EPS, 1.0), labels=labels)),
        "brier": float(brier_score_loss(y, proba, labels=labels, scale_by_half=False)),
        "ece": expected_calibration_error(y, proba),
        "per_class": {
            cid: {"precision": float(p), "recall": float(r), "support": int(s)}
            for cid, p, r, s in zip(class_ids, precision, recall, support)
        },
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
    }


def posterior_comparison(y: np.ndarray, proba: np.ndarray, posterior: np.ndarray) -> dict:
    """How close the model comes to the exact posterior on the same cases.

    Returns the posterior's own top-1/top-3 accuracy and log loss (the ceiling), its
    expected calibration error (calibrated by construction, so what it shows is the
    measurement's own noise on these cases: a floor for the model's), the ratio of model to
    posterior top-1 accuracy, the mean KL(posterior ‖ model) in nats and how often the two
    rank the same class first.

    The ratio is also given as expected under the exact posterior
    (``expected_top1_ratio_to_posterior``): each case's hit or miss replaced by the probability
    that its top class is the true one, ``posterior[case, top class]``. Its expectation is
    the same ratio, without the noise of the one label sampled per case: on 20,000 cases the
    ratio from labels moves by about ±0.003 between sets of cases, the expected one by a
    tenth of that. The calibration error is given against the posterior in the same way
    (``ece_against_posterior``, :func:`calibration_error_against_posterior`).

    Examples
    --------
    >>> import numpy as np
    >>> exact = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1]])
    >>> figures = posterior_comparison(np.array([0, 1]), exact, exact)
    >>> figures["mean_kl_posterior_to_model"], figures["top1_ratio_to_posterior"]
    (0.0, 1.0)
    >>> model = np.array([[0.7, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1]])  # misses the second case's top class
    >>> round(posterior_comparison(np.array([0, 1]), model, exact)["expected_top1_ratio_to_posterior"], 4)
    0.5714
    """
    labels = np.arange(posterior.shape[1])
    posterior_top1 = float(top_k_accuracy_score(y, posterior, k=1, labels=labels))
    model_top1 = float(top_k_accuracy_score(y, proba, k=1, labels=labels))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(posterior > 0, posterior * (np.log(posterior) - np.log(np.clip(proba, _EPS, 1.0))), 0.0)
    expected_ratio = _expected_hits(proba, posterior).mean() / posterior.max(axis=1).mean()
    return {
        "posterior_top1_accuracy": posterior_top1,
        "posterior_top3_accuracy": float(top_k_accuracy_score(y, posterior, k=3, labels=labels)),
        "posterior_log_loss": float(log_loss(y, np.clip(posterior, _EPS, 1.0), labels=labels)),
        "posterior_ece": expected_calibration_error(y, posterior),
        "ece_against_posterior": calibration_error_against_posterior(proba, posterior),
        "top1_ratio_to_posterior": model_top1 / posterior_top1,
        "expected_top1_ratio_to_posterior": float(expected_ratio),
        "mean_kl_posterior_to_model": float(terms.sum(axis=1).mean()),
        "top1_agreement_with_posterior": float((proba.argmax(axis=1) == posterior.argmax(axis=1)).mean()),
    }
