"""Draw synthetic cases from the knowledge base."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.load import load_knowledge
from crampdx.synthetic.tables import ConditionalTable

__all__ = ["generate", "LABEL"]

LABEL = "etiology"
_CHUNK = 250_000


def generate(
    n: int,
    seed: int | None = 0,
    *,
    knowledge: KnowledgeBase | None = None,
    complete: bool = False,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Generate ``n`` synthetic leg-cramp cases.

    Parameters
    ----------
    n : int
        Number of cases (rows).
    seed : int or None
        Seed of the random generator: the same seed gives the same frame.
    knowledge : KnowledgeBase, optional
        The knowledge base to sample from (the shipped one by default).
    complete : bool
        If True, every finding is reported (no "not assessed" values); useful to inspect
        class profiles. The default applies the knowledge base's assessment rates.
    progress : callable, optional
        Called with the number of rows finished after each chunk (for progress bars).

    Returns
    -------
    pandas.DataFrame
        One column per finding id in schema order, then ``etiology`` (the class id).
        Binary and categorical findings are ``Categorical`` columns of level ids (binary:
        ``absent``/``present``); numeric findings are floats in the schema's unit; ``NaN``
        means not assessed. Assessment never depends on the etiology, so a missing value
        carries no evidence.

    Examples
    --------
    >>> cases = generate(1000, seed=1)
    >>> cases.shape[0], cases.columns[-1]
    (1000, 'etiology')
    >>> generate(5, seed=1).equals(generate(5, seed=1))
    True
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative whole number of cases (got {n!r})")
    kb = knowledge or load_knowledge()
    rng = np.random.default_rng(seed)
    codes = np.empty((n, len(kb.schema)))
    component = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        component[start:stop], codes[start:stop] = _sample_chunk(kb, stop - start, rng, complete)
        if progress is not None:
            progress(stop)
    frame = kb.schema.decode(codes)
    frame[LABEL] = pd.Categorical.from_codes(kb.component_class[component], categories=list(kb.class_ids))
    return frame


def _sample_chunk(kb: KnowledgeBase, n: int, rng: np.random.Generator, complete: bool):
    weights = np.exp(kb.component_log_weight)
    component = rng.choice(len(weights), size=n, p=weights / weights.sum())
    codes = np.empty((n, len(kb.schema)))
    position = {fid: j for j, fid in enumerate(kb.schema.ids)}
    for j, fid in enumerate(kb.schema.ids):
        table = kb.tables[fid]
        if not isinstance(table, ConditionalTable):  # children after all their parents
            codes[:, j] = table.sample(component, rng)
    for j, fid in enumerate(kb.schema.ids):
        table = kb.tables[fid]
        if isinstance(table, ConditionalTable):
            codes[:, j] = table.sample_given(component, codes[:, position[table.parent]], rng)
    if not complete:
        for rate, positions in kb.panels:
            missing = rng.random(n) >= rate
            codes[np.ix_(missing, positions)] = np.nan
    return component, codes
