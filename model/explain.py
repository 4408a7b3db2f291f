"""Explanations and the atypical-case message, built from numbers the Diagnoser computed.

Pure functions: the Diagnoser scores and runs SHAP, these turn the numbers into what a
clinician reads.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from crampdx.contract.case import Case
from crampdx.model.results import Atypicality, Contribution, Explanation
from crampdx.synthetic.kb import KnowledgeBase

__all__ = ["ATYPICAL_PERCENTILE", "atypicality", "explanations", "mean_over_rows", "probabilities_of"]

ATYPICAL_PERCENTILE = 0.01


def probabilities_of(scores: np.ndarray) -> np.ndarray:
    """``scipy.special.softmax(scores)`` of one case's scores, shape (n_classes,), computed by the
    same steps (the same floats) without scipy's array-namespace dispatch, which cost more
    than the arithmetic."""
    shifted = np.exp(scores - np.max(scores, keepdims=True))
    return shifted / np.sum(shifted, keepdims=True)


def mean_over_rows(values: np.ndarray) -> np.ndarray:
    """``values.mean(axis=0)``; for a single row, the same floats without numpy's mean: the sum
    of one row is ``0.0 + x`` (which turns -0.0 into 0.0), divided by one."""
    return values[0] + 0.0 if len(values) == 1 else values.mean(axis=0)


def explanations(case: Case, scores: np.ndarray, shap_values: np.ndarray, base: np.ndarray, class_ids: Sequence[str],
                 knowledge: KnowledgeBase, cause_ids: Sequence[str],
                 probabilities: np.ndarray | None = None) -> list[Explanation]:
    """One :class:`Explanation` per cause in ``cause_ids``.

    Parameters
    ----------
    case : Case
    scores : numpy.ndarray
        The case's calibrated scores, shape (n_classes,), in ``class_ids`` order.
    shap_values : numpy.ndarray
        Calibrated SHAP values of the causes explained, shape (n_findings, len(cause_ids)), a
        column per cause in ``cause_ids`` order; ``base`` their expected values.
    probabilities : numpy.ndarray, optional
        ``softmax(scores)``, when the caller has it already.
    """
    probabilities = probabilities_of(scores) if probabilities is None else probabilities
    entered, not_entered = [], []  # (position, finding, its value in words); positions
    for j, finding in enumerate(knowledge.schema):
        if finding.id in case.values:
            entered.append((j, finding, case.describe(finding.id)))
        else:
            not_entered.append(j)
    out = []
    for i, cause_id in enumerate(cause_ids):
        k = list(class_ids).index(cause_id)
        column = shap_values[:, i].tolist()  # Python floats, as float() of each entry
        contributions = [Contribution(finding.id, finding.label, finding.section, text, column[j])
                         for j, finding, text in entered]
        not_assessed = 0.0
        for j in not_entered:  # one by one in schema order: the same sum as ever
            not_assessed += column[j]
        contributions.sort(key=lambda c: -abs(c.contribution))
        etiology = knowledge.class_of(cause_id)
        out.append(Explanation(
            cause_id=cause_id, cause_name=etiology.name, icd10=etiology.icd10,
            probability=float(probabilities[k]), value=float(scores[k]), base_value=float(base[i]),
            contributions=tuple(contributions), not_assessed=not_assessed,
            n_not_assessed=len(knowledge.schema) - len(case)))
    return out


def atypicality(percentile: float, log_evidence: float, reference_cases: int) -> Atypicality:
    """Whether a case's log-evidence percentile (among comparable synthetic cases) is unusual,
    with the message to show.

    A combination with probability zero under the knowledge base (log-evidence ``-inf``) gets
    its own message; otherwise below the 1st percentile warns, its rarity rounded down so that
    it never claims more than measured (never "100.0 %").

    Examples
    --------
    >>> atypicality(0.0015, -20.0, 1000).message.split("(")[1].split(")")[0]
    'rarer than 99.8 % of comparable synthetic cases'
    >>> atypicality(0.4, -5.0, 50).is_atypical
    False
    """
    impossible = log_evidence == -math.inf
    unusual = impossible or percentile < ATYPICAL_PERCENTILE
    if impossible:
        message = ("This combination of findings is impossible under the knowledge base the model was trained from "
                   "(no synthetic case has it): the ranking is an extrapolation.")
    elif unusual:
        share = ">99.9" if percentile < 0.001 else f"{math.floor(1000 * (1 - percentile) + 1e-9) / 10:.1f}"
        message = ("This combination of findings is unusual for what the model knows "
                   f"(rarer than {share} % of comparable synthetic cases): "
                   "interpret the ranking with extra caution.")
    else:
        message = None
    return Atypicality(unusual, percentile, log_evidence, message, reference_cases)
