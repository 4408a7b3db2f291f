"""The generator as it was before issue 12 (commit dd14ae8), kept frozen so that the test and
the benchmark can compare the faster generator's distribution and speed with it.

Not part of the package; imported by tests/test_generate_equivalence.py and
bench/bench_synthetic.py. Same signature and output as ``crampdx.synthetic.generate``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.load import load_knowledge
from crampdx.synthetic.tables import ConditionalTable

LABEL = "etiology"
_CHUNK = 250_000


def generate(
    n: int,
    seed: int | None = 0,
    *,
    knowledge: KnowledgeBase | None = None,
    complete: bool = False,
    workup: str | None = None,
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
        class profiles. The default applies the knowledge base's assessment model: per case
        a workup (brief or full, whatever the etiology), then the panels' rates.
    workup : str, optional
        Give every case this workup of the knowledge base (``"full"``, say) instead of
        drawing one per case.
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

    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative whole number of cases (got {n!r})")
    kb = knowledge or load_knowledge()
    names = [w.name for w in kb.workups]
    if workup is not None and workup not in names:
        raise ValueError(f"workup must be one of {', '.join(names)} (got {workup!r})")
    rng = np.random.default_rng(seed)
    codes = np.empty((n, len(kb.schema)))
    component = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        component[start:stop], codes[start:stop] = _sample_chunk(kb, stop - start, rng, complete, workup)
        if progress is not None:
            progress(stop)
    frame = kb.schema.decode(codes)
    frame[LABEL] = pd.Categorical.from_codes(kb.component_class[component], categories=list(kb.class_ids))
    return frame


def _sample_chunk(kb: KnowledgeBase, n: int, rng: np.random.Generator, complete: bool, workup: str | None):
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
        _apply_workups(codes, kb, rng, workup)
    return component, codes


def _apply_workups(codes: np.ndarray, kb: KnowledgeBase, rng: np.random.Generator, workup: str | None) -> None:
    """Draw each case's workup (never from its etiology) and, for a brief one, keep only a
    random few of the findings the panels assessed."""
    weights = np.array([w.weight for w in kb.workups])
    if workup is None:
        chosen = rng.choice(len(weights), size=len(codes), p=weights / weights.sum())
    else:
        chosen = np.full(len(codes), [w.name for w in kb.workups].index(workup))
    for index, spec in enumerate(kb.workups):
        rows = np.flatnonzero(chosen == index)
        if spec.findings is None or not len(rows):
            continue
        fewest, most = spec.findings
        kept = rng.integers(fewest, most + 1, size=len(rows))
        order = rng.random((len(rows), codes.shape[1]))
        order[np.isnan(codes[rows])] = np.inf  # choose among the assessed findings only
        rank = np.argsort(np.argsort(order, axis=1), axis=1)
        block = codes[rows]
        block[rank >= kept[:, None]] = np.nan
        codes[rows] = block
