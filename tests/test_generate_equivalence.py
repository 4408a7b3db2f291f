"""The faster generator (issue 12) draws from the same distribution as the one it replaced.

The previous implementation is kept frozen in ``tests/previous_generator.py``. Both draw
N cases (different random streams, so the frames differ row by row) and every comparison is
a two-sample chi-square test of homogeneity: each finding's values with "not assessed" as a
category, jointly with the etiology (which checks the class-conditional tables, not only
the mix), each child finding jointly with its parent, which findings a case had assessed
(the number per case, and neighbouring findings together: the brief workup's choice), and
the class frequencies. Numeric findings are compared in pooled-decile bins. Categories with
fewer than 20 cases in both samples together are merged into one, so that the chi-square
approximation holds.

Tolerance: the whole family of tests rejects a true equality with probability at most
FAMILY_ALPHA (Bonferroni over the number of tests). With N = 100,000 per generator, a
proportion of 0.5 that moved by 1 percentage point in one finding would be detected with
a probability of about 0.9.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crampdx.synthetic import LABEL, generate

sys.path.insert(0, str(Path(__file__).parent))
from previous_generator import generate as previous_generate  # noqa: E402

N = 100_000
FAMILY_ALPHA = 1e-3
MIN_CELL = 20


@pytest.fixture(scope="module")
def pair(kb):
    return previous_generate(N, seed=101, knowledge=kb), generate(N, seed=202, knowledge=kb)


def _categories(frame: pd.DataFrame, fid: str, edges: dict) -> np.ndarray:
    """A finding's values as category codes: 0 not assessed, then the level or the decile bin."""
    column = frame[fid]
    if fid in edges:
        codes = np.searchsorted(edges[fid], column.to_numpy(), side="right")
    else:
        codes = column.cat.codes.to_numpy().astype(np.int64)
    return np.where(column.isna().to_numpy(), 0, codes + 1)


def _homogeneity_p(old: np.ndarray, new: np.ndarray) -> float:
    """p-value of a chi-square test that two samples of category codes come from one distribution."""
    values, codes = np.unique(np.concatenate([old, new]), return_inverse=True)
    counts = np.vstack([np.bincount(codes[:len(old)], minlength=len(values)),
                        np.bincount(codes[len(old):], minlength=len(values))])
    rare = counts.sum(axis=0) < MIN_CELL
    table = np.column_stack([counts[:, ~rare], counts[:, rare].sum(axis=1)]) if rare.any() else counts
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def _joint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * 1000 + b


def _comparisons(old: pd.DataFrame, new: pd.DataFrame, kb) -> dict[str, float]:
    ids = list(kb.schema.ids)
    numeric = [f.id for f in kb.schema if f.is_numeric]
    pooled = pd.concat([old[numeric], new[numeric]])
    edges = {fid: np.unique(np.nanquantile(pooled[fid], np.linspace(0.1, 0.9, 9))) for fid in numeric}
    frames = {"old": old, "new": new}
    cats = {w: {fid: _categories(frame, fid, edges) for fid in ids} for w, frame in frames.items()}
    label = {w: frame[LABEL].cat.codes.to_numpy().astype(np.int64) for w, frame in frames.items()}
    p = {"etiology": _homogeneity_p(label["old"], label["new"])}
    for fid in ids:
        p[fid] = _homogeneity_p(cats["old"][fid], cats["new"][fid])
        p[f"{fid} x etiology"] = _homogeneity_p(*(_joint(label[w], cats[w][fid]) for w in frames))
    for fid, table in kb.tables.items():
        parent = getattr(table, "parent", None)
        if parent is not None:
            p[f"{fid} x {parent}"] = _homogeneity_p(*(_joint(cats[w][parent], cats[w][fid]) for w in frames))
    assessed = {w: frame[ids].notna().to_numpy() for w, frame in frames.items()}
    p["findings assessed per case"] = _homogeneity_p(*(assessed[w].sum(axis=1) for w in frames))
    for j in range(len(ids) - 1):
        p[f"assessed together: {ids[j]}, {ids[j + 1]}"] = _homogeneity_p(
            *(2 * assessed[w][:, j] + assessed[w][:, j + 1] for w in frames))
    return p


def test_new_generator_draws_the_previous_distribution(pair, kb):
    old, new = pair
    p = _comparisons(old, new, kb)
    threshold = FAMILY_ALPHA / len(p)
    rejected = {name: value for name, value in p.items() if value < threshold}
    assert not rejected, f"distribution differs (p < {threshold:.1e}): {rejected}"


def test_the_comparison_detects_a_shifted_finding(pair, kb):
    """The same comparisons catch a small change: 1.5 % of one binary finding's 'present'
    answers turned to 'absent' in the new sample."""
    old, new = pair
    fid = next(f.id for f in kb.schema if f.kind == "binary" and (new[f.id] == "present").mean() > 0.05)
    shifted = new.copy()
    present = np.flatnonzero((shifted[fid] == "present").to_numpy())
    flipped = np.random.default_rng(0).choice(present, size=max(1, int(0.015 * len(new))), replace=False)
    shifted.loc[flipped, fid] = "absent"
    p = _comparisons(old, shifted, kb)
    assert p[fid] < FAMILY_ALPHA / len(p)


def test_chunks_concatenate_to_the_whole_frame(kb, monkeypatch):
    module = importlib.import_module("crampdx.synthetic.generate")
    monkeypatch.setattr(module, "_CHUNK", 300)
    chunks = list(module.generate_chunks(1000, seed=9, knowledge=kb))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), generate(1000, seed=9, knowledge=kb))
