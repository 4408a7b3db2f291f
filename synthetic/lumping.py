"""Lumping mixture components that a set of findings cannot tell apart.

Two components of the same class whose tables give every finding of a set ``S`` the same
distribution (the same levels' probabilities, the same normal, the same age band) have
likelihoods ``p(x_S | k)`` that are equal for every case assessed on ``S`` alone. Summed
over components, they can be replaced by one component carrying their summed weight:
``sum_k w_k p(x_S | k) = sum_groups (sum_{k in g} w_k) p(x_S | g)`` exactly. Many findings
do not depend on the age band or sex, so a typical set of findings leaves a few hundred
distinct components of the 867 (all of them once age is among the findings). The
atypical-case check (:func:`class_log_evidence`) scores a block of reference cases without
an age against the lumps (:func:`lumps`, kept from one block to the next), and with the age
known each case against its own age band's components only, without lumping; once a server
has started it, in one compiled loop (:mod:`~crampdx.synthetic.compiled_evidence`).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Iterable

import numpy as np

import crampdx.synthetic.compiled_evidence as compiled_evidence
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.posterior import Intervals, grouped_log_joint
from crampdx.synthetic.tables import NEG, AgeTable, ConditionalTable, LevelTable, NormalTable

__all__ = ["balanced_log_sum", "class_balanced_log_evidence", "class_log_evidence", "family_closure", "log_sum_exp", "lumped_knowledge",
           "lumps", "table_types"]

_EXP_UNDERFLOW = -746.0  # exp(x) is exactly 0.0 below this


def _parameters(table) -> np.ndarray:
    """One row per component: everything the table's distribution in that component depends on."""
    if isinstance(table, LevelTable):
        return table.probs
    if isinstance(table, NormalTable):
        return np.column_stack([table.loc, table.scale])
    if isinstance(table, AgeTable):
        return table.band[:, None].astype(float)
    if isinstance(table, ConditionalTable):
        return np.column_stack([_parameters(table.default)] + [_parameters(v) for v in table.variants if v is not None])
    raise TypeError(f"no lumping rule for a {type(table).__name__}")


@lru_cache(maxsize=4)
def table_types(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    """Finding id -> for each component, the id of its distinct distribution of that finding
    (components with the same id give the finding exactly the same distribution)."""
    return {fid: np.unique(_parameters(table), axis=0, return_inverse=True)[1].reshape(-1)
            for fid, table in kb.tables.items()}


def family_closure(kb: KnowledgeBase, finding_ids: Iterable[str]) -> set[str]:
    """``finding_ids`` with, for each one that belongs to a parent -> children family, the
    whole family (the parent's levels are summed out over its children's tables)."""
    parent_of = kb.parent_of
    out = set(finding_ids)
    for fid in list(out):
        parent = parent_of.get(fid, fid)
        if parent in kb.children:
            out |= {parent, *kb.children[parent]}
    return out


@lru_cache(maxsize=4)
def _type_matrix(kb: KnowledgeBase) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """:func:`table_types` as one matrix (a row per finding), with a random odd 64-bit
    multiplier per row and one for the class (the last): a component's signature hashed."""
    types = table_types(kb)
    multipliers = np.random.default_rng(2026).integers(1, 2**63, size=len(types) + 1, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    matrix = np.vstack(list(types.values())) if types else np.zeros((0, kb.n_components), dtype=np.int64)  # (no tables: by class)
    return {fid: i for i, fid in enumerate(types)}, matrix, multipliers


@lru_cache(maxsize=16)
def lumps(kb: KnowledgeBase, finding_ids: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """The lumps of ``kb``'s components that ``finding_ids`` cannot tell apart (see
    :func:`lumped_knowledge`): the first component of each (in the components' order), and
    the log of each one's summed weight. Kept for the atypical check's next block of
    references (the same findings)."""
    parent_of = kb.parent_of
    # an unseen child adds log 1 = 0 whatever its table: only the seen ones (and their parent) tell components apart
    row_of, types, multipliers = _type_matrix(kb)
    rows = [row_of[fid] for fid in sorted(finding_ids | {parent_of[fid] for fid in finding_ids if fid in parent_of})]
    signature = types[rows]
    # components with the same class and the same distribution of every telling finding: one
    # lump, found by a hash of that signature (one sort of K numbers where sorting the
    # signatures took a sort per finding), then checked exactly
    hashed = kb.component_class.astype(np.uint64) * multipliers[-1] + (signature.astype(np.uint64) * multipliers[rows, None]).sum(axis=0)
    _, first, key = np.unique(hashed, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    key = rank[key.reshape(-1)]
    representative = np.sort(first)
    if not ((signature == signature[:, representative[key]]).all() and (kb.component_class == kb.component_class[representative[key]]).all()):
        key, representative = _lumps_by_sorting(signature, kb.component_class)  # two signatures with one hash (~1e-14)
    log_weight = np.full(len(representative), -np.inf)
    np.logaddexp.at(log_weight, key, kb.component_log_weight)
    representative.flags.writeable = log_weight.flags.writeable = False  # cached and shared
    return representative, log_weight


def _lumps_by_sorting(signature: np.ndarray, component_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each component's lump and each lump's first component, by sorting the signatures."""
    rows = np.vstack([component_class, signature]).T
    _, first, key = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[key.reshape(-1)], np.sort(first)


def lumped_knowledge(kb: KnowledgeBase, finding_ids: Iterable[str]) -> KnowledgeBase:
    """The mixture with the components of a class that the findings ``finding_ids`` cannot
    tell apart lumped into one (weights summed).

    Only for cases whose assessed findings (and ranges) are among ``finding_ids``: their
    :func:`~crampdx.synthetic.posterior.class_posterior_and_evidence` under the lumped
    mixture equals the whole mixture's (to rounding). The lumped knowledge base holds only
    the tables of those findings and of their families.

    Examples
    --------
    >>> from crampdx.synthetic.load import load_knowledge
    >>> kb = load_knowledge()
    >>> lumped = lumped_knowledge(kb, ["true_cramps"])
    >>> lumped.n_components < kb.n_components and sorted(lumped.tables)
    ['true_cramps']
    >>> bool(np.isclose(np.exp(lumped.component_log_weight).sum(), 1.0))
    True
    """
    finding_ids = frozenset(finding_ids)
    representative, log_weight = lumps(kb, finding_ids)
    tables = {fid: kb.tables[fid] for fid in sorted(family_closure(kb, finding_ids))}
    return dataclasses.replace(_restricted(dataclasses.replace(kb, tables=tables), representative),
                               component_log_weight=log_weight)


def class_log_evidence(codes: np.ndarray, kb: KnowledgeBase, finding_ids: Iterable[str],
                       intervals: Intervals | None = None) -> np.ndarray:
    """log p(x_S | c) for encoded cases assessed on (at most) ``finding_ids`` and every class
    c, shape (n, C); a row of ``NaN`` for a case the knowledge base deems impossible
    (``-inf`` for a class that cannot give the case).

    Without the age, computed over the lumps of components the findings cannot tell apart
    (:func:`lumps`); with the age known, each case over its own age band's components only.
    ``intervals`` as in :func:`~crampdx.synthetic.posterior.component_log_joint`.

    Examples
    --------
    >>> from crampdx.synthetic.load import load_knowledge
    >>> kb = load_knowledge()
    >>> codes = np.full((1, len(kb.schema)), np.nan)  # nothing assessed: log 1 for every class
    >>> bool(np.allclose(class_log_evidence(codes, kb, []), 0.0))
    True
    """
    finding_ids = list(finding_ids)
    codes = np.asarray(codes, dtype=float)
    age = next((fid for fid in finding_ids if isinstance(kb.tables[fid], AgeTable)), None)
    balanced = _balanced_by_band(kb)
    compiled = compiled_evidence.EVIDENCE_KERNEL.started  # once started (a server's warm-up): the compiled loop
    if age is None or np.isnan(codes[:, kb.schema.position(age)]).any():
        # each lump's first component, with the lump's summed weight in place of its own
        representative, log_weight = lumps(balanced, frozenset(finding_ids))
        component_class = balanced.component_class[representative]
        if compiled:
            everyone = np.zeros(len(codes), dtype=np.int64)
            out = compiled_evidence.compiled_class_log_evidence(codes, balanced, intervals, representative, log_weight,
                                                                component_class, everyone, everyone + len(representative))
            if out is not None:
                return out
        joint = grouped_log_joint(codes, balanced, [(slice(None), representative)], intervals)[0]
        joint += log_weight - balanced.component_log_weight[representative]
        return _class_log_sum(joint, component_class, len(kb.classes))
    # A known age rules out every component of another age band (probability 0): each case
    # is scored against its band's components only, a tenth of the whole (lumping would
    # merge few components once age tells the bands apart).
    band = kb.tables[age].band_of(codes[:, kb.schema.position(age)])
    starts = np.searchsorted(balanced.component_band, np.arange(balanced.component_band.max() + 2))
    if compiled:  # a band outside the knowledge base's: no components (a row of NaN)
        known, clipped = (band >= 0) & (band < len(starts) - 1), np.clip(band, 0, len(starts) - 2)
        first, last = np.where(known, starts[clipped], 0), np.where(known, starts[clipped + 1], 0)
        out = compiled_evidence.compiled_class_log_evidence(
            codes, balanced, intervals, None, balanced.component_log_weight, balanced.component_class, first, last)
        if out is not None:
            return out
    groups = [(np.flatnonzero(band == b), slice(starts[b], starts[b + 1])) for b in np.unique(band) if 0 <= b < len(starts) - 1]
    possible = [(rows, components) for rows, components in groups if components.stop > components.start]
    # each case's own band's components side by side, padded with impossible ones
    width = max((components.stop - components.start for _, components in possible), default=1)
    joint, component_class = np.full((len(codes), width), NEG), np.zeros((len(codes), width), dtype=np.int64)
    for (rows, components), band_joint in zip(possible, grouped_log_joint(codes, balanced, possible, intervals)):
        joint[rows, :band_joint.shape[1]] = band_joint
        component_class[rows, :band_joint.shape[1]] = balanced.component_class[components]
    return _class_log_sum(joint, component_class, len(kb.classes))


def class_balanced_log_evidence(codes: np.ndarray, kb: KnowledgeBase, finding_ids: Iterable[str],
                                intervals: Intervals | None = None) -> np.ndarray:
    """log (1/C) sum_c p(x_S | c) for encoded cases assessed on (at most) ``finding_ids``:
    the evidence were each of the C classes equally likely a priori, shape (n,); ``NaN`` for
    a case the knowledge base deems impossible. See :func:`class_log_evidence`.

    Examples
    --------
    >>> from crampdx.synthetic.load import load_knowledge
    >>> kb = load_knowledge()
    >>> codes = np.full((1, len(kb.schema)), np.nan)  # nothing assessed: log 1
    >>> bool(np.isclose(class_balanced_log_evidence(codes, kb, [])[0], 0.0))
    True
    """
    return balanced_log_sum(class_log_evidence(codes, kb, finding_ids, intervals))


def balanced_log_sum(class_log_evidence: np.ndarray) -> np.ndarray:
    """log (1/C) sum_c exp(row), per row of per-class log-evidences (``NaN`` stays ``NaN``)."""
    return log_sum_exp(class_log_evidence) - np.log(class_log_evidence.shape[1])


def log_sum_exp(values: np.ndarray) -> np.ndarray:
    """log sum exp along the last axis: ``-inf`` for a row of ``-inf``, ``NaN`` for a row with
    a ``NaN``, as scipy's ``logsumexp``, which costs several times as much on the atypical
    check's small arrays.

    Examples
    --------
    >>> log_sum_exp(np.array([[0.0, 0.0], [-np.inf, -np.inf]])).tolist()
    [0.6931471805599453, -inf]
    """
    top = values.max(axis=-1, keepdims=True)
    shift = np.where(np.isneginf(top), 0.0, top)  # a row of -inf: exp gives zeros, log gives -inf
    with np.errstate(divide="ignore"):
        return np.log(np.exp(values - shift).sum(axis=-1)) + shift[..., 0]


def _balance(kb: KnowledgeBase) -> KnowledgeBase:
    """The mixture with weights w_k / (C prior of k's class): every class equally likely."""
    log_prior = np.log([c.prior for c in kb.classes])
    return dataclasses.replace(
        kb, component_log_weight=kb.component_log_weight - log_prior[kb.component_class] - np.log(len(kb.classes)))


@lru_cache(maxsize=2)
def _balanced_by_band(kb: KnowledgeBase) -> KnowledgeBase:
    """The whole class-balanced mixture with its components in age-band order (each band's
    weights then a contiguous block of columns), kept with the layout of its product."""
    balanced = _restricted(_balance(kb), np.argsort(kb.component_band, kind="stable"))
    for array in [balanced.component_log_weight, balanced.component_class, balanced.component_band]:
        array.flags.writeable = False  # kept and shared
    return balanced


def _restricted(kb: KnowledgeBase, components: np.ndarray) -> KnowledgeBase:
    """The mixture of ``components`` only (weights kept as they are)."""
    return dataclasses.replace(
        kb, component_class=kb.component_class[components], component_profile=kb.component_profile[components],
        component_band=kb.component_band[components], component_sex=kb.component_sex[components],
        component_log_weight=kb.component_log_weight[components],
        tables={fid: table.take(components) for fid, table in kb.tables.items()})


def _class_log_sum(joint: np.ndarray, component_class: np.ndarray, n_classes: int) -> np.ndarray:
    """log p(x | c) per row and class from the class-balanced joint of components of class
    ``component_class`` (per column, or per row and column); ``joint`` is overwritten. A
    row of NaN where every component is impossible."""
    top = joint.max(axis=1)
    joint -= top[:, None]
    # exp() of a number it rounds to 0 takes numpy's slow path: only exponentiate the rest
    # (below -746 the result is exactly 0.0, so the sums are the same to the bit)
    counted = joint > _EXP_UNDERFLOW
    scaled = np.zeros_like(joint)
    scaled[counted] = np.exp(joint[counted])
    # sum_{k in c} w_k p(x | k) / (C prior_c) = p(x | c) / C, scaled by e^-top
    if component_class.ndim == 1:
        for_class = np.zeros((len(component_class), n_classes))
        for_class[np.arange(len(component_class)), component_class] = 1.0
        by_class = scaled @ for_class
    else:
        cell = np.arange(len(joint))[:, None] * n_classes + component_class
        by_class = np.bincount(cell.ravel(), weights=scaled.ravel(), minlength=len(joint) * n_classes).reshape(len(joint), n_classes)
    with np.errstate(divide="ignore"):
        out = np.log(by_class) + (top + np.log(n_classes))[:, None]
    out[top < NEG / 2] = np.nan
    return out
