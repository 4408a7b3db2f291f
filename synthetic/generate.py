"""Draw synthetic cases from the knowledge base."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd

from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.load import load_knowledge
from crampdx.synthetic.draw import sampler_for

__all__ = ["generate", "generate_chunks", "LABEL"]

LABEL = "etiology"
_CHUNK = 100_000


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

    Examples
    --------
    >>> cases = generate(1000, seed=1)
    >>> cases.shape[0], cases.columns[-1]
    (1000, 'etiology')
    >>> generate(5, seed=1).equals(generate(5, seed=1))
    True
    """
    kb, rng, draw = _prepare(n, seed, knowledge, workup)
    columns = [np.empty(n, dtype=np.float64 if f.is_numeric else np.int8) for f in kb.schema]
    component = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        component[start:stop], values = draw(stop - start, rng, complete, workup)
        for column, chunk in zip(columns, values):
            column[start:stop] = chunk
        if progress is not None:
            progress(stop)
    return _frame(kb, columns, component)


def generate_chunks(n: int, seed: int | None = 0, *, knowledge: KnowledgeBase | None = None,
                    complete: bool = False, workup: str | None = None) -> Iterator[pd.DataFrame]:
    """The cases of :func:`generate`, as consecutive frames of at most 100,000 rows (one empty
    frame for ``n = 0``).

    Concatenated, the chunks equal ``generate`` with the same arguments (each chunk's index
    starts at 0), so a large set can be written as it is drawn, in bounded memory.

    Examples
    --------
    >>> chunks = list(generate_chunks(5, seed=1))
    >>> pd.concat(chunks, ignore_index=True).equals(generate(5, seed=1))
    True
    """
    kb, rng, draw = _prepare(n, seed, knowledge, workup)
    for start in range(0, max(n, 1), _CHUNK):
        component, values = draw(min(_CHUNK, n - start), rng, complete, workup)
        yield _frame(kb, values, component)


def _prepare(n, seed, knowledge, workup):
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative whole number of cases (got {n!r})")
    kb = knowledge or load_knowledge()
    names = [w.name for w in kb.workups]
    if workup is not None and workup not in names:
        raise ValueError(f"workup must be one of {', '.join(names)} (got {workup!r})")
    return kb, np.random.default_rng(seed), _ChunkSampler(kb)


def _frame(kb: KnowledgeBase, columns: list[np.ndarray], component: np.ndarray) -> pd.DataFrame:
    """Level codes (``-1``: not assessed) as Categoricals of level ids, numbers as they are."""
    data = {f.id: column if f.is_numeric else
            pd.Categorical.from_codes(column, dtype=pd.CategoricalDtype(list(f.level_ids)), validate=False)
            for f, column in zip(kb.schema, columns)}
    data[LABEL] = pd.Categorical.from_codes(kb.component_class[component], categories=list(kb.class_ids))
    return pd.DataFrame(data)


class _ChunkSampler:
    """Draws chunks of cases: components, every finding (children after their parents), then
    which findings were assessed."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        weights = np.exp(kb.component_log_weight)
        self.component_p = weights / weights.sum()
        self.samplers = [sampler_for(kb.tables[fid]) for fid in kb.schema.ids]
        self.position = {fid: j for j, fid in enumerate(kb.schema.ids)}
        self.numeric = np.array([f.is_numeric for f in kb.schema])

    def __call__(self, n: int, rng: np.random.Generator, complete: bool, workup: str | None):
        component = rng.choice(len(self.component_p), size=n, p=self.component_p)
        values: list = [None] * len(self.samplers)
        for j, sampler in enumerate(self.samplers):
            if not hasattr(sampler, "parent"):  # children after all their parents
                values[j] = sampler.draw(component, rng)
        for j, sampler in enumerate(self.samplers):
            if hasattr(sampler, "parent"):
                values[j] = sampler.draw_given(component, values[self.position[sampler.parent]], rng)
        if not complete:
            for j, assessed in enumerate(_assessed(self.kb, n, rng, workup)):
                np.copyto(values[j], np.nan if self.numeric[j] else -1, where=~assessed)
        return component, values


def _assessed(kb: KnowledgeBase, n: int, rng: np.random.Generator, workup: str | None) -> Iterator[np.ndarray]:
    """Whether each case had each finding assessed, one finding (schema order) at a time: the
    panels at their rates, then each case's workup (never drawn from its etiology); a brief
    workup keeps a uniformly random few of the findings the panels assessed.

    The few are chosen by selection sampling (Knuth's algorithm S), one finding at a time: an
    assessed finding is kept with probability (still to keep) / (assessed findings from here
    on), which makes every subset of the right size equally likely, with no sort.
    """
    p = len(kb.schema)
    panel_of = np.full(p, len(kb.panels))
    panel_assessed = np.ones((len(kb.panels) + 1, n), dtype=bool)  # the last row: findings in no panel
    for index, (rate, positions) in enumerate(kb.panels):
        panel_of[list(positions)] = index
        panel_assessed[index] = rng.random(n) < rate
    sizes = np.bincount(panel_of, minlength=len(kb.panels) + 1)
    ahead = sizes.astype(np.int16) @ panel_assessed  # findings assessed by the panels, per case
    weights = np.array([w.weight for w in kb.workups])
    if workup is None:
        chosen = rng.choice(len(weights), size=n, p=weights / weights.sum())
    else:
        chosen = np.full(n, [w.name for w in kb.workups].index(workup))
    need = np.full(n, p, dtype=np.int16)  # a full workup keeps every assessed finding
    for index, spec in enumerate(kb.workups):
        rows = np.flatnonzero(chosen == index)
        if spec.findings is not None and len(rows):
            fewest, most = spec.findings
            need[rows] = rng.integers(fewest, most + 1, size=len(rows))
    for j in range(p):
        assessed = panel_assessed[panel_of[j]]
        keep = assessed & (rng.random(n) * ahead < need)
        need -= keep
        ahead -= assessed
        yield keep
