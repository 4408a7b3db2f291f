"""The model against the exact posterior per regime: how many findings a case holds.

Real presentations hold a handful of findings, sometimes no age; synthetic evaluation on the
generator's own mix alone would hide how the model does there. Each regime is a set of fresh
cases, drawn so that what is missing never depends on the etiology:

* ``generator mix`` — the knowledge base's own assessment model (brief and full workups);
* ``4 findings``, ``8 findings``, ``12 findings`` — full workups of which that many of the
  assessed findings are kept, chosen at random;
* ``age missing`` — the generator's mix with age removed.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import top_k_accuracy_score

from crampdx.synthetic import LABEL, generate
from crampdx.synthetic.kb import KnowledgeBase

__all__ = ["REGIMES", "regime_cases", "regime_figures"]

REGIMES = ("generator mix", "4 findings", "8 findings", "12 findings", "age missing")
_EPS = 1e-15


def regime_cases(kb: KnowledgeBase, regime: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Encoded cases of one regime and their class positions (``kb.class_ids`` order).

    Examples
    --------
    >>> from crampdx.synthetic import load_knowledge
    >>> codes, labels = regime_cases(load_knowledge(), "4 findings", 50, seed=1)
    >>> sorted(set((~np.isnan(codes)).sum(axis=1).tolist()))
    [4]
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)} (got {regime!r})")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(REGIMES.index(regime),)))
    full = "full" in [w.name for w in kb.workups] and regime.endswith("findings")
    cases = generate(n, seed=int(rng.integers(2**31)), knowledge=kb, workup="full" if full else None)
    codes = kb.schema.encode(cases)
    if regime.endswith("findings"):
        keep = int(regime.split()[0])
        order = rng.random(codes.shape)
        order[np.isnan(codes)] = np.inf
        rank = np.argsort(np.argsort(order, axis=1), axis=1)
        codes[rank >= keep] = np.nan
    elif regime == "age missing":
        codes[:, kb.schema.position("age")] = np.nan
    return codes, cases[LABEL].cat.codes.to_numpy()


def regime_figures(proba: np.ndarray, exact: np.ndarray, labels: np.ndarray, codes: np.ndarray) -> dict:
    """KL(exact posterior ‖ model) and top-1/top-3 accuracy of both on one regime's cases."""
    classes = np.arange(exact.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(exact > 0, exact * (np.log(exact) - np.log(np.clip(proba, _EPS, 1.0))), 0.0).sum(axis=1)
    return {
        "n": int(len(labels)),
        "findings_mean": float((~np.isnan(codes)).sum(axis=1).mean()),
        "kl_posterior_to_model": float(kl.mean()),
        "top1_model": float(top_k_accuracy_score(labels, proba, k=1, labels=classes)),
        "top1_posterior": float(top_k_accuracy_score(labels, exact, k=1, labels=classes)),
        "top3_model": float(top_k_accuracy_score(labels, proba, k=3, labels=classes)),
        "top3_posterior": float(top_k_accuracy_score(labels, exact, k=3, labels=classes)),
    }
