"""What the knowledge base expects of findings not yet assessed.

* :func:`answer_distributions` — for unassessed findings, the exact predictive distribution
  of each possible answer given the findings entered, p(x_f = a | x_S) under the generator.
  Numeric findings are answered in bins (markedly low, low, normal, high, markedly high),
  each with its exact probability and a representative value.
* :func:`draw_within_ranges` — values for results known only as a range, drawn from the
  knowledge base given the rest of the case.

How usual a case is lives in :mod:`crampdx.synthetic.typicality`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.special import ndtr

from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.posterior import Intervals, component_log_joint
from crampdx.synthetic.tables import ConditionalTable, LevelTable, NormalTable, safe_log

__all__ = ["AnswerSet", "answer_distributions", "class_component_weights", "component_posterior", "draw_within_ranges",
           "numeric_bins"]

@dataclass(frozen=True)
class AnswerSet:
    """The possible answers to one unassessed finding and their predictive probabilities.

    ``values`` are what would be entered (level ids, or a representative number per bin);
    ``labels`` describe them; ``probabilities`` (the exact predictive distribution given
    the case) sum to 1; ``class_probabilities[c]`` is the same distribution given the case
    *and* etiology class ``c`` (rows in ``kb.class_ids`` order, each summing to 1).
    """

    finding_id: str
    values: tuple
    labels: tuple[str, ...]
    probabilities: np.ndarray
    class_probabilities: np.ndarray


def component_posterior(codes: np.ndarray, kb: KnowledgeBase, intervals: Intervals | None = None) -> np.ndarray:
    """p(component | findings present), shape (n, K); ``intervals`` as in
    :func:`~crampdx.synthetic.posterior.component_log_joint`."""
    joint = component_log_joint(np.atleast_2d(codes), kb, intervals)
    joint -= joint.max(axis=1, keepdims=True)
    weights = np.exp(joint)
    return weights / weights.sum(axis=1, keepdims=True)


def class_component_weights(component_post: np.ndarray, kb: KnowledgeBase) -> np.ndarray:
    """p(component | findings, class), shape (n_classes, K), from p(component | findings).

    A class the findings rule out (all its components at probability 0) falls back to the
    whole posterior over components, so every row is a distribution and an answer the
    findings make impossible (a pregnancy for a man) keeps probability 0.
    """
    membership = kb.component_class[None, :] == np.arange(len(kb.classes))[:, None]
    weights = np.where(membership, component_post[None, :], 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.where(totals > 0, weights, component_post[None, :])
    return weights / weights.sum(axis=1, keepdims=True)


def numeric_bins(finding, table: NormalTable) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Bin edges, representative values and labels for a numeric finding's answers.

    Five bins around the reference range: markedly low, low, normal, high, markedly high.
    "Markedly" starts half a reference-range width beyond it (a ratio of the range on a log
    scale for log-normal findings); bins that fall outside the hard range are dropped.
    """
    low, high = finding.hard
    ref_low, ref_high = finding.reference
    if table.log_space:
        ratio = np.sqrt(ref_high / ref_low)
        marked_low, marked_high = ref_low / ratio, ref_high * ratio
        mid = lambda a, b: np.sqrt(a * b)  # noqa: E731
    else:
        half = (ref_high - ref_low) / 2
        marked_low, marked_high = ref_low - half, ref_high + half
        mid = lambda a, b: (a + b) / 2  # noqa: E731
    edges = [low, marked_low, ref_low, ref_high, marked_high, high]
    names = ("markedly low", "low", "normal", "high", "markedly high")
    keep = [i for i in range(5) if edges[i] < edges[i + 1] and low <= edges[i] and edges[i + 1] <= high]
    cut = np.array([edges[keep[0]]] + [edges[i + 1] for i in keep])
    representatives = np.array([mid(cut[i], cut[i + 1]) for i in range(len(keep))])
    return cut, representatives, tuple(names[i] for i in keep)


def _bin_probabilities(table: NormalTable, edges: np.ndarray) -> np.ndarray:
    """p(bin | component) for a truncated (log-)normal, shape (K, n_bins)."""
    t = np.log(edges) if table.log_space else edges
    cdf = ndtr((t[None, :] - table.loc[:, None]) / table.scale[:, None])
    mass = np.diff(cdf, axis=1)
    return mass / mass.sum(axis=1, keepdims=True)


def _answer_matrix(table, finding, edges) -> np.ndarray:
    if isinstance(table, LevelTable):
        return table.probs
    return _bin_probabilities(table, edges)


def _family_parent_weights(codes_row: np.ndarray, kb: KnowledgeBase, parent: str,
                           ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """p(parent level | component, assessed children), shape (K, L_parent)."""
    schema = kb.schema
    observed_parent = codes_row[schema.position(parent)]
    n_levels = kb.tables[parent].probs.shape[1]
    if not np.isnan(observed_parent):
        return np.tile(np.eye(n_levels)[int(observed_parent)], (kb.n_components, 1))
    log_w = safe_log(kb.tables[parent].probs).copy()
    for child in kb.children[parent]:
        if child in ranges:
            for level in range(n_levels):
                log_w[:, level] += kb.tables[child].given(level).log_mass(*ranges[child])
            continue
        value = codes_row[schema.position(child)]
        if np.isnan(value):
            continue
        design = kb.tables[child].design(np.array([value]))
        for level in range(n_levels):
            log_w[:, level] += (design @ kb.tables[child].given(level).log_weights())[0]
    log_w -= log_w.max(axis=1, keepdims=True)
    weights = np.exp(log_w)
    return weights / weights.sum(axis=1, keepdims=True)


def answer_distributions(codes_row: np.ndarray, kb: KnowledgeBase, finding_ids=None,
                         ranges: Mapping[str, tuple[float, float]] | None = None) -> list[AnswerSet]:
    """Exact predictive distributions of unassessed findings given one case.

    Parameters
    ----------
    codes_row : numpy.ndarray
        One encoded case, shape (n_findings,) or (1, n_findings).
    kb : KnowledgeBase
    finding_ids : iterable of str, optional
        Which findings; default every finding not assessed in the case.
    ranges : mapping, optional
        Findings of the case known only as a range, finding id -> (low, high).
    """
    row = np.asarray(codes_row, dtype=float).reshape(-1)
    schema = kb.schema
    ranges = dict(ranges or {})
    if finding_ids is None:
        finding_ids = [fid for fid in schema.ids if np.isnan(row[schema.position(fid)]) and fid not in ranges]
    post = component_posterior(row[None, :], kb, {0: ranges})[0]
    by_class = class_component_weights(post, kb)
    parent_of = kb.parent_of
    out = []
    for fid in finding_ids:
        finding, table = schema[fid], kb.tables[fid]
        edges = values = labels = None
        if finding.is_numeric and fid != "age":
            base = table.default if isinstance(table, ConditionalTable) else table
            edges, values, labels = numeric_bins(finding, base)
        elif finding.is_numeric:  # age: one answer per band
            edges = table.edges
            values = tuple(float(np.floor((a + b) / 2)) for a, b in zip(edges[:-1], edges[1:]))
            labels = tuple(f"{a:.0f}–{b - 1:.0f} years" for a, b in zip(edges[:-1], edges[1:]))
        else:
            values = finding.level_ids
            labels = tuple(level.label for level in finding.levels)
        if fid == "age":
            matrix = np.eye(len(values))[table.band]
        elif fid in parent_of:
            parent = parent_of[fid]
            weights = _family_parent_weights(row, kb, parent, ranges)
            matrix = sum(weights[:, [p]] * _answer_matrix(table.given(p), finding, edges) for p in range(weights.shape[1]))
        elif fid in kb.children:
            matrix = _family_parent_weights(row, kb, fid, ranges)
        else:
            matrix = _answer_matrix(table, finding, edges)
        probabilities = post @ matrix
        class_probabilities = by_class @ matrix
        out.append(AnswerSet(fid, tuple(values), tuple(labels), probabilities / probabilities.sum(),
                             class_probabilities / class_probabilities.sum(axis=1, keepdims=True)))
    return out


def draw_within_ranges(codes_row: np.ndarray, ranges: Mapping[str, tuple[float, float]], kb: KnowledgeBase,
                       n: int = 32, seed: int = 0) -> np.ndarray:
    """``n`` copies of one case whose results known only as a range get values drawn from
    that range, under the knowledge base given everything else in the case.

    Each copy draws a mixture component from p(component | the case, ranges included)
    (stratified, so ``n`` copies cover the components in proportion), then each range's
    value from that component's distribution truncated to the range. A child finding whose
    parent is not assessed takes the parent's level from the component's own distribution.
    The same case and seed give the same copies.

    Returns
    -------
    numpy.ndarray
        Shape (n, n_findings): the case's codes with the ranged findings filled in.
    """
    row = np.asarray(codes_row, dtype=float).reshape(1, -1)
    if not ranges:
        return row
    post = component_posterior(row, kb, {0: dict(ranges)})[0]
    rng = np.random.default_rng(seed)
    strata = (np.arange(n) + rng.random(n)) / n
    component = np.minimum(np.searchsorted(np.cumsum(post), strata * post.sum()), kb.n_components - 1)
    rows = np.repeat(row, n, axis=0)
    for fid, (low, high) in ranges.items():
        table, position = kb.tables[fid], kb.schema.position(fid)
        if isinstance(table, ConditionalTable):
            parent = row[0, kb.schema.position(table.parent)]
            levels = (np.full(n, parent) if not np.isnan(parent)
                      else kb.tables[table.parent].sample(component, rng))
            values = np.empty(n)
            for level in np.unique(levels).astype(int):
                mine = levels == level
                values[mine] = table.given(level).sample(component[mine], rng, low, high)
            rows[:, position] = values
        else:
            rows[:, position] = table.sample(component, rng, low, high)
    return rows
