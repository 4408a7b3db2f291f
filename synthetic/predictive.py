"""What the knowledge base expects of findings not yet assessed, and how usual a case is.

* :func:`answer_distributions` — for unassessed findings, the exact predictive distribution
  of each possible answer given the findings entered, p(x_f = a | x_S) under the generator.
  Numeric findings are answered in bins (markedly low, low, normal, high, markedly high),
  each with its exact probability and a representative value.
* :func:`evidence_percentile` — where log p(x_S) of a case falls among generated cases with
  the *same* set S of assessed findings (log-evidence falls as findings are added, so only
  like can be compared with like). Both sides are weighed as if every cause were equally
  common, so a textbook case of a rare cause is typical, not atypical.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import ndtr

from crampdx.synthetic.generate import generate
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.lumping import class_balanced_log_evidence
from crampdx.synthetic.posterior import Intervals, class_posterior_and_evidence, component_log_joint
from crampdx.synthetic.tables import ConditionalTable, LevelTable, NormalTable, safe_log

__all__ = ["AnswerSet", "EvidencePercentile", "answer_distributions", "class_component_weights", "component_posterior",
           "draw_within_ranges", "evidence_percentile", "numeric_bins", "reference_cases", "TIE_TOLERANCE"]

# Log-evidences this close (relative, at least 1 nat) are the same combination of findings
# computed along different paths (a mixture sum in another order); they tie.
TIE_TOLERANCE = 1e-9


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
    parent_of = {child: parent for parent, kids in kb.children.items() for child in kids}
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


@lru_cache(maxsize=4)
def reference_cases(kb: KnowledgeBase, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` fully assessed generated cases, the same number from every class (masked
    per query to the case's assessed set), and their weights (all equal).

    Drawing every class equally, rather than weighing prior-distributed cases by 1 / (K
    prior), makes every case count: 1,000 balanced cases hold as much information as 4,000
    weighted ones (whose rare classes carried large weights) at a quarter of the cost of
    each atypical check. Rows are the first ``n // K`` cases of each class in a pool drawn
    from ``seed`` (extended with spawned seeds until the rarest class has enough), taken a
    class at a time in turn, so that every prefix of ``m K`` rows holds ``m`` of each class.
    """
    per_class = max(1, n // len(kb.classes))
    rarest = min(c.prior for c in kb.classes)
    pool_size = int(np.ceil(1.5 * per_class / rarest))
    frames, ranks, counts = [], [], np.zeros(len(kb.classes), dtype=int)
    for chunk_seed in np.random.SeedSequence(seed).spawn(64):
        frame = generate(pool_size, seed=int(chunk_seed.generate_state(1)[0]), knowledge=kb, complete=True)
        labels = frame["etiology"].cat.codes.to_numpy()
        rank_in_class = np.zeros(len(labels), dtype=int)
        for k in range(len(kb.classes)):
            members = np.flatnonzero(labels == k)
            rank_in_class[members] = counts[k] + np.arange(len(members))
        keep = rank_in_class < per_class
        frames.append(frame[keep])
        ranks.append(rank_in_class[keep] * len(kb.classes) + labels[keep])
        counts += np.bincount(labels[keep], minlength=len(kb.classes))
        if counts.min() >= per_class:
            break
    else:  # pragma: no cover - a class with a prior this small is refused by the knowledge base
        raise RuntimeError("the reference cases could not cover every class")
    codes = kb.schema.encode(pd.concat(frames, ignore_index=True))[np.argsort(np.concatenate(ranks))]
    weights = np.ones(len(codes))
    codes.flags.writeable = weights.flags.writeable = False  # cached and shared: callers copy
    return codes, weights


class EvidencePercentile(NamedTuple):
    """Where a case's log-evidence falls among comparable generated cases (see
    :func:`evidence_percentile`)."""

    percentile: float
    log_evidence: float
    reference_cases: int  # how many comparable generated cases it was measured against


def evidence_percentile(codes_row: np.ndarray, kb: KnowledgeBase, *, ranges: Mapping[str, tuple[float, float]] | None = None,
                        n_reference: int = 1000, seed: int = 20_011, settle_at: float | None = None) -> EvidencePercentile:
    """Where a case's log-evidence falls among generated cases with the same assessed findings.

    A finding known only as a range is compared like with like: each reference case gives
    that finding as the cell of the same partition (below, within or above the range) its
    value falls in, so probabilities are compared with probabilities, not with densities.
    References are scored with :func:`~crampdx.synthetic.lumping.class_balanced_log_evidence`
    (exact, lumping the mixture components the case's assessed findings cannot tell apart),
    each block in one batch with the case, so a reference with the case's very findings ties
    with it.

    With ``settle_at`` the references are scored a block at a time (twice the number of
    classes, then eight times, then all, every block holding each class equally), stopping
    as soon as enough of them fall below the case that the percentile over all ``n_reference``
    cannot be below ``settle_at`` (a sequential Monte Carlo test, Besag & Clifford 1991):
    whether a case is below ``settle_at`` is decided exactly as with every reference, at a
    fraction of the cost for the usual case, whose percentile is then measured on fewer
    references (``reference_cases``).

    Returns
    -------
    EvidencePercentile
        ``percentile``: the mid-rank of the case's class-balanced log-evidence, log (1/K)
        sum_c p(x_S | c), among the reference cases (the same number from every class)
        restricted to the same set of assessed findings: the fraction below it plus half the
        fraction equal to it (so a case with nothing assessed sits at 0.5, not at 0); equal
        means within :data:`TIE_TOLERANCE` (relative), so rounding never splits a tie.
        Balancing the classes keeps a typical case of a rare cause from reading as atypical.
        ``log_evidence``: the case's log p(x_S). ``reference_cases``: how many references
        were scored.
    """
    row = np.asarray(codes_row, dtype=float).reshape(1, -1)
    ranges = dict(ranges or {})
    _, case_evidence = class_posterior_and_evidence(row, kb, {0: ranges})
    if not np.isfinite(case_evidence[0]):
        return EvidencePercentile(0.0, float(case_evidence[0]), 0)
    reference, weight = reference_cases(kb, n_reference, seed)
    assessed = [fid for fid in kb.schema.ids if fid in ranges or not np.isnan(row[0, kb.schema.position(fid)])]
    n_classes = len(kb.classes)
    ends = [len(reference)] if settle_at is None else sorted({min(len(reference), k * n_classes) for k in (2, 8)} | {len(reference)})
    below = tied = counted = 0.0
    start = 0
    for end in ends:
        block = reference[start:end]
        batch = np.vstack([row, block])
        batch[1:, np.isnan(row[0])] = np.nan
        intervals = {0: ranges}
        for fid, bounds in ranges.items():
            cells = _partition_cells(block[:, kb.schema.position(fid)], bounds, kb.schema[fid].hard)
            for i, cell in enumerate(cells, start=1):
                intervals.setdefault(i, {})[fid] = cell
        balanced = class_balanced_log_evidence(batch, kb, assessed, intervals)
        case_balanced = balanced[0]  # this block's own: the case and its references along one code path
        tolerance = TIE_TOLERANCE * max(1.0, abs(case_balanced))  # equal findings, equal up to rounding
        block_weight = weight[start:end]
        below += block_weight[balanced[1:] < case_balanced - tolerance].sum()
        tied += block_weight[np.abs(balanced[1:] - case_balanced) <= tolerance].sum()
        counted += block_weight.sum()
        start = end
        if settle_at is not None and below + tied / 2 >= settle_at * weight.sum():
            break
    return EvidencePercentile(float((below + tied / 2) / counted), float(case_evidence[0]), int(start))


def _partition_cells(values: np.ndarray, bounds: tuple[float, float], hard: tuple[float, float]) -> list[tuple[float, float]]:
    """For each value, the cell of {below, within, above} ``bounds`` (within ``hard``) it falls in."""
    low, high = bounds
    cuts = sorted({hard[0], low, high, hard[1]})
    cells = list(zip(cuts[:-1], cuts[1:]))
    index = np.clip(np.searchsorted(cuts, values, side="right") - 1, 0, len(cells) - 1)
    return [cells[i] for i in index]


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
