"""What to ask or examine next: the unentered findings whose answers are expected to
sharpen the differential most.

One predictive model for everything: the model's differential q(c) for the case, and for
each etiology class c the knowledge base's exact distribution of the answer given the case
and that class, p(a | c, case). Together they define one joint q(c, a) = q(c) p(a | c, case);
the answer probabilities are its marginal q(a), the differential after an answer is the
Bayes update q(c | a), and the expected information gain is the mutual information between
cause and answer, so it is never negative. The chance that the top cause changes is computed
under the same joint.
"""

from __future__ import annotations

import numpy as np

from crampdx.contract.case import Case
from crampdx.model.results import NextFinding
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.predictive import answer_distributions

__all__ = ["next_best_findings"]


def _entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=axis)


def next_best_findings(case: Case, differential: np.ndarray, kb: KnowledgeBase, class_order: tuple[str, ...],
                       k: int = 5) -> list[NextFinding]:
    """Rank the unentered findings of ``case`` by expected information gain.

    Parameters
    ----------
    case : Case
    differential : numpy.ndarray
        The model's probabilities for the case, in ``class_order``.
    kb : KnowledgeBase
        The knowledge base the model was trained under.
    class_order : tuple of str
        Class ids of ``differential``'s entries.
    k : int
        How many findings to return.

    Returns
    -------
    list of NextFinding
        Most informative first. ``expected_information_gain`` (bits) is >= 0;
        ``answers`` are (answer, probability) with probabilities summing to 1.
    """
    schema = kb.schema
    unentered = [fid for fid in schema.ids if fid not in case]
    if not unentered or k <= 0:
        return []
    prior = np.zeros(len(kb.classes))
    prior[[kb.class_ids.index(c) for c in class_order]] = differential
    prior = prior / prior.sum()
    current_top = int(np.argmax(prior))
    current_entropy = float(_entropy_bits(prior))
    results = []
    ranges = {fid: (value.low, value.high) for fid, value in case.intervals.items()}
    for answers in answer_distributions(case.codes(), kb, unentered, ranges):
        joint = prior[:, None] * answers.class_probabilities  # q(c, a)
        marginal = np.clip(joint.sum(axis=0), 0.0, None)  # q(a)
        marginal /= marginal.sum()
        seen = marginal > 0
        updated = joint[:, seen] / marginal[seen]  # q(c | a), one column per possible answer
        expected_entropy = float(marginal[seen] @ _entropy_bits(updated, axis=0))
        changes = updated.argmax(axis=0) != current_top
        finding = schema[answers.finding_id]
        results.append(NextFinding(
            finding.id, finding.label, finding.section,
            max(0.0, current_entropy - expected_entropy),  # mutual information; clip rounding below 0
            float(np.clip(marginal[seen] @ changes, 0.0, 1.0)),
            tuple((label, float(p)) for label, p in zip(answers.labels, marginal))))
    results.sort(key=lambda r: -r.expected_information_gain)
    return results[:k]
