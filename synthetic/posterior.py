"""The exact posterior of the generator: p(etiology | the findings present).

Under the knowledge base a case is drawn from a finite mixture of components; given its
component the findings are independent, apart from parent -> child dependencies. So

    log p(x_S, component k) = log w_k + sum over observed findings f of log p(x_f | k)

(missing findings are marginalised out by skipping them), computed for all cases and all
components at once as one matrix product of a one-hot/quadratic design with per-component
log-weights (:mod:`synthetic.tables`). A parent with children is one joint factor: when the
parent is not assessed it is summed out exactly.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd

from crampdx.synthetic.design import joint_plan, level_onehot
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.load import load_knowledge
from crampdx.synthetic.tables import NEG

__all__ = ["Intervals", "case_posterior", "class_posterior_and_evidence", "component_log_joint", "grouped_log_joint",
           "interval_terms", "log_evidence", "posterior", "posterior_from_codes"]

_CHUNK = 20_000


def _codes(cases, kb: KnowledgeBase) -> np.ndarray:
    if isinstance(cases, pd.DataFrame):
        return kb.schema.encode(cases)
    codes = np.asarray(cases, dtype=float)
    if codes.ndim != 2 or codes.shape[1] != len(kb.schema):
        raise ValueError(f"expected a frame or an array with {len(kb.schema)} columns (schema order)")
    return codes


Intervals = Mapping[int, Mapping[str, tuple[float, float]]]


def component_log_joint(codes: np.ndarray, kb: KnowledgeBase, intervals: Intervals | None = None) -> np.ndarray:
    """log p(observed findings, component) for each case (rows) and component (columns).

    Parameters
    ----------
    codes : numpy.ndarray
        Encoded cases (``Schema.encode``), ``NaN`` where not assessed.
    kb : KnowledgeBase
    intervals : mapping, optional
        Row -> {numeric finding id -> (low, high)}: results known only as a range (given in
        words, or censored). Each contributes the probability mass of its range, exactly
        (``NaN`` in ``codes`` at those places).
    """
    everything = slice(None)
    return _joint(_Product.of(codes, kb, intervals), kb, everything, everything)


def grouped_log_joint(codes: np.ndarray, kb: KnowledgeBase, groups, intervals: Intervals | None = None) -> list[np.ndarray]:
    """:func:`component_log_joint` of the rows of each group over that group's components
    only: ``groups`` is a sequence of (row indices, component indices), and the result one
    array (rows, components) per group. The cases' designs are built once for every group
    (the atypical check scores each age band's cases against that band's components)."""
    product = _Product.of(codes, kb, intervals)
    return [_joint(product, kb, rows, components) for rows, components in groups]


class _Product(NamedTuple):
    """The parts of the product for a batch of cases, before any component is chosen."""

    n_cases: int
    design: np.ndarray | None  # (n, D)
    weights: np.ndarray | None  # (D, K)
    # (parent id, rows to sum over the parent's levels, children's design, parent's log-weights (K, L),
    # children's weights per parent level)
    families: list
    ranged: dict  # row -> summed log-mass (K,) of its ranges
    per_level: dict  # parent -> row -> (levels, K): a child's range under a parent not assessed

    @classmethod
    def of(cls, codes: np.ndarray, kb: KnowledgeBase, intervals: Intervals | None) -> "_Product":
        intervals = intervals or {}
        plan = joint_plan(kb)
        # A finding no case assessed contributes log 1 = 0: leave it out of the product (a sparse
        # batch, or the reference cases of the atypical check, then costs what it assesses). A
        # range's mass is added apart (its place in ``codes`` is NaN).
        ranged_ids = {fid for entries in intervals.values() for fid in entries}
        assessed = ~np.isnan(codes).all(axis=0)
        untabled = [fid for fid, column in zip(kb.schema.ids, assessed & ~plan.has_table) if column]
        untabled += sorted(fid for fid in ranged_ids if fid not in kb.tables)
        if untabled:  # a restricted (lumped) knowledge base cannot score findings it left out
            raise KeyError(f"the knowledge base holds no table for {', '.join(untabled)}")
        designs, weights = [], []
        for _, column, table in plan.others:
            if assessed[column]:
                designs.append(table.design(codes[:, column]))
                weights.append(table.log_weights())
        chosen = assessed[plan.level_columns]
        if chosen.any():  # every level finding's one-hot columns at once (one table at a time cost more than the product)
            designs.append(level_onehot(codes, plan.level_widths[chosen], plan.level_columns[chosen]))
            weights.append(plan.level_weights[chosen[plan.level_owner]])
        ranged, per_level = interval_terms(codes, kb, intervals)
        families = []
        for family in plan.families:
            kids_assessed = assessed[family.kid_columns]
            if not assessed[family.parent_column] and not kids_assessed.any() and ranged_ids.isdisjoint(family.kid_ids):
                continue
            parent_onehot = family.parent_table.design(codes[:, family.parent_column])
            kid_design = np.hstack([family.kid_tables[j].design(codes[:, family.kid_columns[j]])
                                    for j in np.flatnonzero(kids_assessed)] or [np.zeros((len(codes), 0))])
            kid_weights = [level_weights[kids_assessed[family.kid_owner]] for level_weights in family.kid_weights]
            # A parent that is assessed at level p makes the family linear again:
            # 1[parent = p] * (log p(p | k) + children's terms under p).
            for level, level_weights in enumerate(kid_weights):
                indicator = parent_onehot[:, level:level + 1]
                designs += [indicator, indicator * kid_design]
                weights += [family.parent_log[None, :, level], level_weights]
            # the cases whose family must be summed over the parent's levels: parent missing, a child known
            summed_out = (parent_onehot.sum(axis=1) == 0) & (kid_design.any(axis=1)
                                                             | _rows_in(per_level.get(family.parent, {}), len(codes)))
            families.append((family.parent, summed_out, kid_design, family.parent_log, kid_weights))
        return cls(len(codes), np.hstack(designs) if designs else None, np.vstack(weights) if designs else None, families, ranged, per_level)


def _joint(product: _Product, kb: KnowledgeBase, rows, components) -> np.ndarray:
    """log p(findings, component) of ``product``'s ``rows`` and ``components`` (index arrays or slices)."""
    row_ids = np.arange(product.n_cases)[rows]
    out = np.tile(kb.component_log_weight[components], (len(row_ids), 1))
    if product.design is not None:
        out += product.design[row_ids] @ product.weights[:, components]
    for positions, terms in _shared_terms(product.ranged, row_ids):
        out[positions] += terms[components]
    for parent, summed_out, kid_design, parent_log, kid_weights in product.families:
        extra = product.per_level.get(parent, {})
        local = np.flatnonzero(summed_out[row_ids])
        if len(local):
            terms = None
            if extra:  # only rows with a child's range carry extra terms
                terms = np.zeros((len(local), len(kid_weights), out.shape[1]))
                for positions, row_terms in _shared_terms(extra, row_ids[local]):
                    terms[positions] = row_terms[:, components]
            out[local] += _sum_out_parent(kid_design[row_ids[local]], parent_log[components],
                                          [w[:, components] for w in kid_weights], terms)
    return out


def _shared_terms(by_row: dict, row_ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``row_ids`` (positions in it) that ``by_row`` gives terms, grouped by the
    terms' array: rows with the same ranges share one (:func:`interval_terms`)."""
    groups: dict[int, tuple[np.ndarray, list]] = {}
    if by_row:
        for i, row in enumerate(row_ids.tolist()):
            terms = by_row.get(row)
            if terms is not None:
                groups.setdefault(id(terms), (terms, []))[1].append(i)
    return [(np.array(positions), terms) for terms, positions in groups.values()]


def _rows_in(rows, n: int) -> np.ndarray:
    """A boolean mask of length ``n``, true at ``rows``."""
    mask = np.zeros(n, dtype=bool)
    mask[list(rows)] = True
    return mask


def interval_terms(codes: np.ndarray, kb: KnowledgeBase, intervals: Intervals) -> tuple[dict, dict]:
    """Each range's log-mass: summed per row (row -> (K,)), or, for a child whose parent is not
    assessed, per parent level (parent -> row -> (levels, K)) to be summed out. Ranges repeat
    (the atypical check's references give three cells per range): each is computed once, and
    rows with the same ranges share its (read-only) array."""
    parent_of = kb.parent_of
    ranged: dict[int, np.ndarray] = {}
    per_level: dict[str, dict[int, np.ndarray]] = {}
    masses: dict[tuple, np.ndarray] = {}  # (finding, low, high[, the parent's level]) -> log-mass
    parent_columns = {parent: kb.schema.position(parent) for parent in kb.children}
    for row, entries in intervals.items():
        for fid, (low, high) in entries.items():
            parent = parent_of.get(fid)
            key = (fid, low, high)
            if key not in masses:
                masses[key] = _log_mass(kb, fid, float(low), float(high))
            terms = masses[key]
            if parent is not None:
                code = codes[row, parent_columns[parent]]
                if np.isnan(code):
                    family = per_level.setdefault(parent, {})
                    family[row] = terms if row not in family else family[row] + terms
                    continue
                key += (int(code),)
                terms = masses[key] = masses.get(key, terms[int(code)])
            ranged[row] = terms if row not in ranged else ranged[row] + terms
    return ranged, per_level


@lru_cache(maxsize=256)
def _log_mass(kb: KnowledgeBase, fid: str, low: float, high: float) -> np.ndarray:
    """The log-mass of ``low``-``high`` in every component (per parent level for a child),
    read-only: the atypical check asks for the same cells block after block."""
    table, parent = kb.tables[fid], kb.parent_of.get(fid)
    mass = (table.log_mass(low, high) if parent is None else
            np.stack([table.given(level).log_mass(low, high) for level in range(len(kb.schema[parent].levels))]))
    mass.flags.writeable = False
    return mass


def _sum_out_parent(kid_design, parent_log, kid_weights, extra) -> np.ndarray:
    """log sum_p p(parent = p | k) p(children | p, k), for cases whose parent is not assessed;
    ``extra[:, p]`` (if not None) adds the children's range terms under level p."""
    total = kid_design @ kid_weights[0] + parent_log[:, 0]
    if extra is not None:
        total += extra[:, 0]
    for level in range(1, len(kid_weights)):
        term = kid_design @ kid_weights[level] + parent_log[:, level]
        if extra is not None:
            term += extra[:, level]
        np.logaddexp(total, term, out=total)
    return total


def class_posterior_and_evidence(codes: np.ndarray, kb: KnowledgeBase, intervals: Intervals | None = None):
    """Class posterior, shape (n, n_classes), and log-evidence, shape (n,), of encoded cases.

    Computed in chunks of cases. ``intervals`` (row -> {finding -> (low, high)}) adds the
    results known only as a range. A case the knowledge base deems impossible gets a row of
    ``NaN`` and log-evidence ``-inf``.
    """
    intervals = intervals or {}
    n_classes = len(kb.classes)
    membership = np.zeros((kb.n_components, n_classes))
    membership[np.arange(kb.n_components), kb.component_class] = 1.0
    post = np.empty((len(codes), n_classes))
    evidence = np.empty(len(codes))
    for start in range(0, len(codes), _CHUNK):
        chunk_intervals = {row - start: entries for row, entries in intervals.items() if start <= row < start + _CHUNK}
        joint = component_log_joint(codes[start:start + _CHUNK], kb, chunk_intervals)
        top = joint.max(axis=1, keepdims=True)
        impossible = top[:, 0] < NEG / 2
        top[impossible] = 0.0
        scaled = np.exp(joint - top)
        total = scaled.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):  # impossible rows: total 0, set below
            chunk_post = (scaled @ membership) / total
            chunk_evidence = np.log(total[:, 0]) + top[:, 0]
        chunk_post[impossible] = np.nan
        chunk_evidence[impossible] = -np.inf
        post[start:start + _CHUNK] = chunk_post
        evidence[start:start + _CHUNK] = chunk_evidence
    return post, evidence


def posterior_from_codes(codes: np.ndarray, kb: KnowledgeBase | None = None,
                         intervals: Intervals | None = None) -> np.ndarray:
    """Class posterior for encoded cases, an array (n, n_classes) in ``kb.class_ids`` order.

    ``intervals`` maps a row to its results known only as a range, {finding id: (low, high)}.
    """
    kb = kb or load_knowledge()
    return class_posterior_and_evidence(np.asarray(codes, dtype=float), kb, intervals)[0]


def posterior(cases, *, knowledge: KnowledgeBase | None = None) -> pd.DataFrame:
    """Exact p(etiology | the findings present) under the knowledge base.

    Parameters
    ----------
    cases : pandas.DataFrame
        Shaped like :func:`synthetic.generate`'s output (the ``etiology`` column is
        optional and ignored; absent finding columns count as not assessed).
    knowledge : KnowledgeBase, optional
        The shipped knowledge base by default.

    Returns
    -------
    pandas.DataFrame
        One column per etiology id, rows summing to 1, indexed like ``cases``. A case the
        knowledge base gives probability zero (a pregnant man) gets a row of ``NaN``.

    Raises
    ------
    crampdx.contract.SchemaError
        If a column, level or value does not fit the finding schema.

    Examples
    --------
    >>> import pandas as pd
    >>> post = posterior(pd.DataFrame({"potassium": [2.6], "med_diuretic": ["present"]}))
    >>> post.idxmax(axis=1).item(), round(float(post.sum(axis=1).item()), 6)
    ('hypokalemia', 1.0)
    """
    kb = knowledge or load_knowledge()
    post, _ = class_posterior_and_evidence(_codes(cases, kb), kb)
    index = cases.index if isinstance(cases, pd.DataFrame) else None
    return pd.DataFrame(post, columns=list(kb.class_ids), index=index)


def log_evidence(cases, *, knowledge: KnowledgeBase | None = None) -> np.ndarray:
    """log p(findings present) per case under the knowledge base.

    Categorical findings contribute probabilities and numeric findings densities (in the
    schema's units), so values are comparable only between cases with the same set of
    assessed findings. ``-inf`` marks a case the knowledge base deems impossible.
    """
    kb = knowledge or load_knowledge()
    return class_posterior_and_evidence(_codes(cases, kb), kb)[1]


def case_posterior(case, kb: KnowledgeBase | None = None) -> np.ndarray:
    """Exact class posterior of one validated :class:`~crampdx.contract.Case`, ranges included.

    Examples
    --------
    >>> from crampdx.contract import validate_case
    >>> from crampdx.synthetic import load_knowledge
    >>> kb = load_knowledge()
    >>> post = case_posterior(validate_case({"potassium": "low", "med_diuretic": "yes"}), kb)
    >>> kb.class_ids[int(post.argmax())]
    'hypokalemia'
    """
    kb = kb or load_knowledge()
    intervals = {0: {fid: (v.low, v.high) for fid, v in case.intervals.items()}}
    return class_posterior_and_evidence(case.codes(), kb, intervals)[0][0]
