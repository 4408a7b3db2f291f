"""Evaluate a Diagnoser on fresh synthetic cases against the truth and the exact posterior."""

from __future__ import annotations

import numpy as np

from crampdx.model.diagnoser import Diagnoser
from crampdx.synthetic import LABEL, generate, posterior_from_codes
from crampdx.training.metrics import (
    calibration_bins,
    calibration_bins_against_posterior,
    classification_metrics,
    posterior_comparison,
)
from crampdx.training.regimes import REGIMES, regime_cases, regime_figures

__all__ = ["evaluate", "evaluate_regimes", "evaluation_seed"]

_SEED_OFFSET = 1_000_003


def evaluation_seed(training_seed: int) -> int:
    """The default evaluation seed: always different from the training seed."""
    return int(training_seed) + _SEED_OFFSET


def _model_proba(diagnoser: Diagnoser, codes: np.ndarray) -> np.ndarray:
    """The model's probabilities in the knowledge base's class order (a class the model never
    saw gets 0)."""
    kb = diagnoser.knowledge_
    proba = np.zeros((len(codes), len(kb.classes)))
    proba[:, [kb.class_ids.index(cid) for cid in diagnoser.class_ids_]] = diagnoser.predict_proba_codes(codes)
    return proba


def evaluate_regimes(diagnoser: Diagnoser, n: int, seed: int, regimes=REGIMES) -> dict:
    """The model against the exact posterior per regime (:mod:`crampdx.training.regimes`),
    ``n`` fresh cases each: regime -> figures."""
    out = {}
    for regime in regimes:
        codes, labels = regime_cases(diagnoser.knowledge_, regime, n, seed)
        exact = posterior_from_codes(codes, diagnoser.knowledge_)
        out[regime] = regime_figures(_model_proba(diagnoser, codes), exact, labels, codes)
    return out


def evaluate(diagnoser: Diagnoser, n: int, seed: int, *, regime_n: int | None = None) -> dict:
    """All evaluation figures for ``n`` fresh synthetic cases drawn with ``seed``.

    Returns
    -------
    dict
        ``model`` (top-1/top-3 accuracy, log loss, Brier, ECE, per-class precision and
        recall, confusion matrix), ``posterior`` (the exact posterior's figures on the same
        cases and the model's distance to it), ``calibration`` (reliability bins),
        ``regimes`` (the model against the exact posterior on sparse cases and without age,
        ``regime_n`` cases each, ``n`` by default), ``class_ids``, ``n`` and ``seed``.
    """
    kb = diagnoser.knowledge_
    cases = generate(n, seed=seed, knowledge=kb)
    codes = kb.schema.encode(cases)
    labels = cases[LABEL].cat.codes.to_numpy()
    proba = _model_proba(diagnoser, codes)
    exact = posterior_from_codes(codes, kb)
    class_ids = list(kb.class_ids)
    return {
        "n": int(n),
        "seed": int(seed),
        "class_ids": class_ids,
        "model": classification_metrics(labels, proba, class_ids),
        "posterior": posterior_comparison(labels, proba, exact),
        "calibration": {**calibration_bins(labels, proba),
                        "expected_accuracy": calibration_bins_against_posterior(proba, exact)["accuracy"]},
        "regimes": {"generator mix": regime_figures(proba, exact, labels, codes),
                    **evaluate_regimes(diagnoser, regime_n or n, seed, REGIMES[1:])},
    }


def headline(figures: dict) -> dict:
    """The figures worth a table row each (for the CLI summary and the README)."""
    m, p = figures["model"], figures["posterior"]
    return {
        "top-1 accuracy": m["top1_accuracy"],
        "top-3 accuracy": m["top3_accuracy"],
        "log loss": m["log_loss"],
        "Brier score": m["brier"],
        "expected calibration error": m["ece"],
        "posterior top-1 accuracy": p["posterior_top1_accuracy"],
        "posterior top-3 accuracy": p["posterior_top3_accuracy"],
        "posterior log loss": p["posterior_log_loss"],
        "posterior expected calibration error": p["posterior_ece"],
        "calibration error against the posterior": p["ece_against_posterior"],
        "top-1 ratio model/posterior": p["top1_ratio_to_posterior"],
        "top-1 ratio, expected under the posterior": p["expected_top1_ratio_to_posterior"],
        "mean KL(posterior ‖ model), nats": p["mean_kl_posterior_to_model"],
        "top-1 agreement with posterior": p["top1_agreement_with_posterior"],
    }
