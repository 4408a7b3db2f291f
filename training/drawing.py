"""Where the synthetic training cases are drawn from: the generator's mixture with the weights
of its causes flattened.

Each synthetic case is fitted to its exact posterior p(cause | findings) (soft targets,
:mod:`crampdx.training.distill`), and that target does not depend on how often such a case is
drawn. So the training cases can be drawn from another mixture of the same components without
biasing what is learned: drawing the rare causes and sub-profiles more often (raloxifene or
teriparatide cramps, say, each under 0.5 % of the generator's cases) gives the trees more rows
where the posterior turns on a rarely taken drug, at the price of fewer rows where the
posterior is already easy. Measured on 100,000 fresh cases of the generator's own mix (README,
"Training, 2026-12-04, afternoon"): closer to the exact posterior in top-1 accuracy and KL.

Only the weight of each (cause, sub-profile) pair is raised to a power, then renormalised; age
band and sex given the pair are the generator's own, and so is which findings are assessed.
The model is evaluated on the generator's own mix, never on these cases.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import logsumexp

from crampdx.synthetic.kb import KnowledgeBase
from crampdx.training.defaults import is_prior_power

__all__ = ["check_prior_power", "drawing_knowledge", "profile_weights"]


def profile_weights(kb: KnowledgeBase) -> np.ndarray:
    """The probability of each (cause, sub-profile) pair in ``kb``'s mixture.

    Parameters
    ----------
    kb : KnowledgeBase

    Returns
    -------
    numpy.ndarray
        Shape (len(kb.profiles),), indexed as ``kb.profiles``, summing to 1.

    Examples
    --------
    >>> from crampdx.synthetic import load_knowledge
    >>> kb = load_knowledge()
    >>> weights = profile_weights(kb)
    >>> len(weights) == len(kb.profiles), round(float(weights.sum()), 9)
    (True, 1.0)
    """
    return np.bincount(kb.component_profile, weights=np.exp(kb.component_log_weight), minlength=len(kb.profiles))


def check_prior_power(prior_power: float) -> None:
    """Raise ValueError, saying what a prior power may be, unless ``prior_power`` is one."""
    if not is_prior_power(prior_power):
        raise ValueError(f"the prior power must be in (0, 1] (got {prior_power!r}): 1 draws the generator's own mix")


def drawing_knowledge(kb: KnowledgeBase, prior_power: float) -> KnowledgeBase:
    """``kb`` with the weight of each (cause, sub-profile) pair raised to ``prior_power`` and
    renormalised, for drawing training cases; ``kb`` itself when the power is 1.

    Only :attr:`KnowledgeBase.component_log_weight` differs, so the cases' targets must still
    come from ``kb`` (the returned knowledge base's posterior is not the generator's).

    Parameters
    ----------
    kb : KnowledgeBase
        The knowledge base the cases' targets come from.
    prior_power : float
        In (0, 1]: 1 keeps the generator's mix; smaller values draw rare causes more often.
        Each pair is flattened on its own, so a cause with many sub-profiles (medication-induced
        cramps: 9) gains more than one with a single profile, some of which lose a little.

    Returns
    -------
    KnowledgeBase
        To draw from with :func:`crampdx.synthetic.generate`; never to compute targets with.

    Examples
    --------
    >>> from crampdx.synthetic import load_knowledge
    >>> kb = load_knowledge()
    >>> flat = drawing_knowledge(kb, 0.5)
    >>> before, after = profile_weights(kb), profile_weights(flat)
    >>> bool(after.min() > before.min()), bool(after.max() < before.max())
    (True, True)
    >>> bool(np.allclose(after, np.sqrt(before) / np.sqrt(before).sum()))
    True
    >>> drawing_knowledge(kb, 1.0) is kb
    True
    """
    check_prior_power(prior_power)
    if prior_power == 1.0:
        return kb
    pairs = profile_weights(kb)
    with np.errstate(divide="ignore"):  # a pair of weight 0 stays at 0
        log_pair = np.where(pairs > 0, np.log(pairs), 0.0)[kb.component_profile]
    log_weight = kb.component_log_weight + (prior_power - 1.0) * log_pair
    return dataclasses.replace(kb, component_log_weight=log_weight - logsumexp(log_weight))
