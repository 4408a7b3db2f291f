"""Class log-evidences of a batch of encoded cases in one compiled loop (the atypical check).

:func:`~crampdx.synthetic.lumping.class_log_evidence` scores a block of reference cases
(usually 50) against each case's own components: the lumps its findings cannot tell apart,
or its age band's. In numpy that is a design built table by table, a matrix product per age
band, a sum over the parent's levels per family whose parent is not assessed and a
log-sum-exp per class: dozens of calls whose fixed costs, not the arithmetic, take most of
the check's time. Here one compiled loop reads each case's codes and adds, for every
assessed finding, its row of log-weights over the case's components (a level's row, a
normal's quadratic, linear and constant rows, an age band's row):

    log p(x_r | c) = log sum_{k in c, k among row r's components} exp(log w_k + sum_f log p(x_rf | k)
                     + ranges_rk + sum_families log sum_p p(p | k) prod_children p(x_child | p, k))

(a child known only as a range under a parent not assessed adds its log-mass under each level p
inside the sum),

with the class-balanced weights of :mod:`~crampdx.synthetic.lumping` (so the sum is
p(x_r | c) / C, and log C is added back). The values are the numpy path's to rounding: the
same terms summed in another order. Left to the numpy path (``None``): a finding without a
table, and codes outside the tables (a level's code out of range, an age outside every band),
which the loop checks first as it reads without bounds checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crampdx.compiled import LazyKernel
from crampdx.synthetic.design import joint_plan
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.posterior import Intervals, interval_terms
from crampdx.synthetic.tables import NEG, AgeTable, LevelTable, NormalTable

__all__ = ["EVIDENCE_KERNEL", "compiled_class_log_evidence"]

LEVEL, NORMAL, AGE = 0, 1, 2
_MISMATCH = "the components, their weights and classes, and each row's range of them do not match"


def _add_finding(kind, x, off, center, log_space, edges, weights, first, m, into):
    """Add the log-weights of one finding's value ``x`` (rows from ``off``) to ``into[:m]``."""
    if kind == LEVEL:
        row = weights[off + int(x), first:first + m]
        for k in range(m):
            into[k] += row[k]
    elif kind == NORMAL:
        z = (np.log(x) if log_space else x) - center
        quadratic, linear, constant = weights[off, first:first + m], weights[off + 1, first:first + m], weights[off + 2, first:first + m]
        zz = z * z
        for k in range(m):
            into[k] += zz * quadratic[k] + z * linear[k] + constant[k]
    else:
        row = weights[off + np.searchsorted(edges, x, side="right") - 1, first:first + m]
        for k in range(m):
            into[k] += row[k]


def _level_term(codes, r, f, level, k, g, kid_in, kid_col, kid_kind, kid_offset, kid_center, kid_log, kid_weights, parent_log,
                level_extra, q):
    """log p(parent = level | g) + the assessed children's log p(x_r | level, g), for one
    component ``g`` of the knowledge base (the ``k``-th chosen), plus (``q`` >= 0) the
    children's ranges under that level."""
    value = parent_log[f, level, g] + (level_extra[q, level, k] if q >= 0 else 0.0)
    for j in range(kid_col.shape[1]):
        if kid_in[f, j]:
            x = codes[r, kid_col[f, j]]
            if not np.isnan(x):
                off = kid_offset[f, j]
                if kid_kind[f, j] == LEVEL:
                    value += kid_weights[f, level, off + int(x), g]
                else:
                    z = (np.log(x) if kid_log[f, j] else x) - kid_center[f, j]
                    value += z * z * kid_weights[f, level, off, g] + z * kid_weights[f, level, off + 1, g] + kid_weights[f, level, off + 2, g]
    return value


def _class_sums(codes, assessed, n_codes, columns, kind, offset, center, log_space, edges, weights, log_weight, start, stop,
                component_class, chosen, ranged_of_row, ranged, families, parent_col, parent_in, n_levels, parent_log, kid_in,
                kid_col, kid_kind, kid_offset, kid_center, kid_log, kid_weights, family_type, level_extra_of_row, level_extra, out):
    """log p(x_r | c) of every row r of ``codes`` into ``out`` (n, C); see the module docstring.
    False, with nothing computed, when a code lies outside the tables (a level's code out of
    range or not whole, an age outside every band): the numpy path's answer."""
    n_rows, n_classes = out.shape
    n_chosen = len(chosen)
    width = 1
    for r in range(n_rows):
        if not 0 <= start[r] <= stop[r] <= n_chosen:
            raise ValueError(_MISMATCH)
        width = max(width, stop[r] - start[r])
        for col in assessed:  # the loop below reads without bounds checks
            x = codes[r, col]
            if np.isnan(x):
                continue
            if n_codes[col] > 0 and not (0 <= x < n_codes[col] and x == np.floor(x)):
                return False
            if kind[col] == AGE and not edges[0] <= x < edges[-1]:
                return False
    for k in range(n_chosen):
        if not (0 <= component_class[k] < n_classes and 0 <= chosen[k] < family_type.shape[1]):
            raise ValueError(_MISMATCH)
    joint, sums = np.empty(width), np.empty(n_classes)
    n_types = 1
    for f in families:
        for k in range(family_type.shape[1]):
            n_types = max(n_types, family_type[f, k] + 1)
    # a family's term depends on the component only through its type (the same parent and
    # children's weights): computed once per type a row meets, marked with (row, family)
    term_of_type, marked = np.empty(n_types), np.full(n_types, -1)
    log_classes = np.log(n_classes)
    for r in range(n_rows):
        first, m = start[r], stop[r] - start[r]
        for k in range(m):
            joint[k] = log_weight[first + k]
        for col in columns:
            x = codes[r, col]
            if not np.isnan(x):
                _add_finding(kind[col], x, offset[col], center[col], log_space[col], edges, weights, first, m, joint)
        if ranged_of_row[r] >= 0:
            for k in range(m):
                joint[k] += ranged[ranged_of_row[r], first + k]
        for f in families:
            parent = codes[r, parent_col[f]] if parent_in[f] else np.nan
            summed = np.isnan(parent)  # else the parent assessed: its level's terms only
            q = level_extra_of_row[f, r]  # a child's range under the parent not assessed
            anything = not summed or q >= 0
            for j in range(kid_col.shape[1]):
                anything = anything or (kid_in[f, j] and not np.isnan(codes[r, kid_col[f, j]]))
            if not anything:  # nothing of the family in this row: log 1
                continue
            mark = r * parent_col.shape[0] + f
            for kk in range(m):
                k = first + kk
                g = chosen[k]
                t = family_type[f, g]
                if marked[t] != mark:
                    marked[t] = mark
                    if not summed:
                        value = _level_term(codes, r, f, int(parent), k, g, kid_in, kid_col, kid_kind, kid_offset, kid_center,
                                            kid_log, kid_weights, parent_log, level_extra, -1)
                    else:  # summed over the parent's levels, as np.logaddexp does it
                        value = _level_term(codes, r, f, 0, k, g, kid_in, kid_col, kid_kind, kid_offset, kid_center, kid_log,
                                            kid_weights, parent_log, level_extra, q)
                        for level in range(1, n_levels[f]):
                            other = _level_term(codes, r, f, level, k, g, kid_in, kid_col, kid_kind, kid_offset, kid_center,
                                                kid_log, kid_weights, parent_log, level_extra, q)
                            if value == other:
                                value = value + np.log(2.0)
                            elif value > other:
                                value = value + np.log1p(np.exp(other - value))
                            else:
                                value = other + np.log1p(np.exp(value - other))
                    term_of_type[t] = value
                joint[kk] += term_of_type[t]
        top = -np.inf
        for k in range(m):
            top = max(top, joint[k])
        if top < NEG / 2:  # every component impossible (or none in the case's band)
            out[r, :] = np.nan
            continue
        sums[:] = 0.0
        for k in range(m):
            sums[component_class[first + k]] += np.exp(joint[k] - top)
        for c in range(n_classes):
            out[r, c] = (np.log(sums[c]) if sums[c] > 0.0 else -np.inf) + (top + log_classes)
    return True


EVIDENCE_KERNEL = LazyKernel(_class_sums, helpers=(_add_finding, _level_term))


@dataclass(frozen=True, eq=False)
class _EvidencePlan:
    """A knowledge base's tables as the loop reads them: per schema column, its kind, its
    first row of ``weights`` and its normal's centring; per family, the parent's and the
    children's weights under each parent level (padded to the largest family)."""

    kind: np.ndarray  # per column: LEVEL, NORMAL, AGE, or -1 (a family's member, or no table)
    readable: np.ndarray  # per column: stand-alone or a family's member (else no table the loop reads)
    n_codes: np.ndarray  # per column: its number of levels (a level finding), else 0
    offset: np.ndarray
    width: np.ndarray  # per column: its number of rows in ``weights``
    center: np.ndarray
    log_space: np.ndarray
    edges: np.ndarray  # the age table's band edges
    weights: np.ndarray  # (rows, K): every stand-alone finding's log-weights stacked
    parent_col: np.ndarray  # (F,)
    n_levels: np.ndarray  # (F,)
    parent_log: np.ndarray  # (F, levels, K), NEG past a parent's levels
    kid_col: np.ndarray  # (F, J), -1 past a family's children
    kid_kind: np.ndarray
    kid_offset: np.ndarray
    kid_center: np.ndarray
    kid_log: np.ndarray
    kid_weights: np.ndarray  # (F, levels, rows, K)
    family_type: np.ndarray  # (F, K): components with the same parent and children's weights share a type
    families: np.ndarray  # (F,): 0 .. F-1 (the loop skips a family with nothing in a row)
    family_of_column: dict  # a parent's schema column -> its family
    every_component: np.ndarray  # (K,): 0 .. K-1, the components when all are chosen


def _table_layout(tables) -> tuple[list, list, list, list, list]:
    """Kinds, first rows, centres and log-space flags of ``tables`` stacked in order, and their weights."""
    kinds, offsets, centers, logs, blocks, row = [], [], [], [], [], 0
    for table in tables:
        kinds.append(LEVEL if isinstance(table, LevelTable) else NORMAL if isinstance(table, NormalTable) else AGE)
        offsets.append(row)
        centers.append(getattr(table, "center", 0.0))
        logs.append(bool(getattr(table, "log_space", False)))
        blocks.append(table.log_weights())
        row += blocks[-1].shape[0]
    return kinds, offsets, centers, logs, blocks


def _evidence_plan(kb: KnowledgeBase) -> _EvidencePlan | None:
    """The plan of ``kb``, made on first use and kept with it (``None``: a table the loop cannot read)."""
    if "_evidence_plan" in kb.__dict__:
        return kb.__dict__["_evidence_plan"]
    plan = joint_plan(kb)
    alone = [(int(column), kb.tables[kb.schema.ids[column]]) for column in plan.level_columns] + [(c, t) for _, c, t in plan.others]
    ages = [table for _, table in alone if isinstance(table, AgeTable)]
    kid_tables = [table.default for family in plan.families for table in family.kid_tables]
    supported = all(isinstance(t, (LevelTable, NormalTable, AgeTable)) for _, t in alone) and len(ages) <= 1 and \
        all(isinstance(t, (LevelTable, NormalTable)) for t in kid_tables)
    result = None
    if supported:
        n_columns, n_families = len(kb.schema), len(plan.families)
        kinds, offsets, centers, logs, blocks = _table_layout([table for _, table in alone])
        kind, offset, width, center, log_space = (np.full(n_columns, -1, dtype=np.int64), np.zeros(n_columns, dtype=np.int64),
                                                  np.zeros(n_columns, dtype=np.int64), np.zeros(n_columns), np.zeros(n_columns, dtype=np.bool_))
        columns = [column for column, _ in alone]
        kind[columns], offset[columns], center[columns], log_space[columns] = kinds, offsets, centers, logs
        width[columns] = [block.shape[0] for block in blocks]
        levels = max((family.parent_log.shape[1] for family in plan.families), default=1)
        n_kids = max((len(family.kid_ids) for family in plan.families), default=1)
        rows = max((family.kid_weights[0].shape[0] for family in plan.families), default=1)
        parent_log = np.full((n_families, levels, kb.n_components), NEG)
        kid = {name: np.full((n_families, n_kids), fill, dtype=dtype) for name, fill, dtype in
               [("col", -1, np.int64), ("kind", 0, np.int64), ("offset", 0, np.int64), ("center", 0.0, float), ("log", False, np.bool_)]}
        kid_weights = np.zeros((n_families, levels, rows, kb.n_components))
        for f, family in enumerate(plan.families):
            parent_log[f, :family.parent_log.shape[1]] = family.parent_log.T
            k_kinds, k_offsets, k_centers, k_logs, _ = _table_layout([table.default for table in family.kid_tables])
            j = len(family.kid_ids)
            kid["col"][f, :j], kid["kind"][f, :j], kid["offset"][f, :j] = family.kid_columns, k_kinds, k_offsets
            kid["center"][f, :j], kid["log"][f, :j] = k_centers, k_logs
            for level, level_weights in enumerate(family.kid_weights):
                kid_weights[f, level, :level_weights.shape[0]] = level_weights
        readable = kind >= 0
        readable[[family.parent_column for family in plan.families] + [c for family in plan.families for c in family.kid_columns]] = True
        n_codes = np.zeros(n_columns, dtype=np.int64)
        for column in range(n_columns):
            table = kb.tables.get(kb.schema.ids[column])
            table = getattr(table, "default", table)
            n_codes[column] = table.n_features if isinstance(table, LevelTable) else 0
        result = _EvidencePlan(
            kind, readable, n_codes, offset, width, center, log_space, ages[0].edges.astype(float) if ages else np.zeros(1),
            np.ascontiguousarray(np.vstack(blocks)) if blocks else np.zeros((1, kb.n_components)),
            np.array([family.parent_column for family in plan.families], dtype=np.int64),
            np.array([family.parent_log.shape[1] for family in plan.families], dtype=np.int64), parent_log,
            kid["col"], kid["kind"], kid["offset"], kid["center"], kid["log"], kid_weights, _family_types(parent_log, kid_weights),
            np.arange(n_families, dtype=np.int64), {family.parent_column: f for f, family in enumerate(plan.families)},
            np.arange(kb.n_components, dtype=np.int64))
    object.__setattr__(kb, "_evidence_plan", result)  # a frozen dataclass: past its __setattr__
    return result


def _by_row(items, shape, term_shape, chosen) -> tuple[np.ndarray, np.ndarray]:
    """From (place, terms) pairs: an index array of ``shape`` (-1 where no terms) into a stack of
    the distinct terms arrays (rows with the same ranges share one, see ``interval_terms``),
    each taken at the chosen components and padded to ``term_shape``."""
    index, stacked, position = np.full(shape, -1, dtype=np.int64), [], {}
    for place, terms in items:
        if id(terms) not in position:
            position[id(terms)] = len(stacked)
            stacked.append(terms)
        index[place] = position[id(terms)]
    out = np.zeros((max(1, len(stacked)),) + tuple(term_shape))
    for q, terms in enumerate(stacked):
        out[(q,) + tuple(slice(0, n) for n in terms.shape[:-1])] = terms[..., chosen]
    return index, out


def _family_types(parent_log: np.ndarray, kid_weights: np.ndarray) -> np.ndarray:
    """Per family and component, the id of its distinct column of weights (parent's and children's)."""
    types = np.zeros(parent_log.shape[::2], dtype=np.int64)
    for f in range(len(types)):
        columns = np.vstack([parent_log[f], kid_weights[f].reshape(-1, parent_log.shape[2])]).T
        types[f] = np.unique(columns, axis=0, return_inverse=True)[1].reshape(-1)
    return types


def compiled_class_log_evidence(codes: np.ndarray, kb: KnowledgeBase, intervals: Intervals | None, components: np.ndarray | None,
                                log_weight: np.ndarray, component_class: np.ndarray, start: np.ndarray,
                                stop: np.ndarray) -> np.ndarray | None:
    """log p(x_r | c) for each encoded case r and class c, shape (n, C), over the case's
    components ``start[r]:stop[r]`` of ``components`` (indices into ``kb``'s components,
    ``None`` for all) with log-weights ``log_weight`` and classes ``component_class`` (both per
    chosen component, the weights class-balanced); a row of ``NaN`` where every one of them is
    impossible. ``intervals`` as in :func:`~crampdx.synthetic.posterior.component_log_joint`.
    ``None`` where the numpy path must do it (see the module docstring).
    """
    plan = _evidence_plan(kb)
    if plan is None:
        return None
    # fresh writable C arrays, whatever the caller gives: numba compiles once per layout and
    # read-only flag, and a second compilation would stop a server for seconds
    chosen = plan.every_component if components is None else np.array(components, dtype=np.int64)
    start, stop, component_class = (np.array(a, dtype=np.int64) for a in (start, stop, component_class))
    log_weight = np.array(log_weight, dtype=float)
    if not len(log_weight) == len(component_class) == len(chosen) or not start.shape == stop.shape == (len(codes),) or \
            len(chosen) and not 0 <= chosen.min() <= chosen.max() < kb.n_components:  # (the loop checks the rest)
        raise ValueError(_MISMATCH)
    codes = np.require(codes, dtype=float, requirements=["C", "W"])
    assessed = np.flatnonzero(~np.isnan(codes).all(axis=0))
    if not plan.readable[assessed].all():
        return None
    intervals = intervals or {}
    if intervals and not (set(map(type, intervals)) <= {int, np.int64} and 0 <= min(intervals) and max(intervals) < len(codes)):
        return None  # not rows of this batch: the numpy path's answer
    ranged_terms, per_level = interval_terms(codes, kb, intervals)
    picked = slice(None) if components is None else chosen
    ranged_of_row, ranged = _by_row(ranged_terms.items(), len(codes), (len(log_weight),), picked)
    family_of = {parent: plan.family_of_column[kb.schema.position(parent)] for parent in per_level}
    level_extra_of_row, level_extra = _by_row(
        [((family_of[parent], row), terms) for parent, by_row in per_level.items() for row, terms in by_row.items()],
        (len(plan.parent_col), len(codes)), plan.parent_log.shape[1:2] + (len(log_weight),), picked)
    known = np.zeros(len(plan.kind) + 1, dtype=np.bool_)  # the extra last place: a padded child (-1)
    known[assessed] = True
    kid_in, parent_in, alone, offset, weights = known[plan.kid_col], known[plan.parent_col], assessed[plan.kind[assessed] >= 0], plan.offset, plan.weights
    if components is not None:  # only the rows the findings use, only the chosen components' columns
        widths = plan.width[alone]
        firsts = np.cumsum(widths) - widths
        rows = np.repeat(plan.offset[alone] - firsts, widths) + np.arange(widths.sum())
        offset = plan.offset.copy()
        offset[alone] = firsts
        weights = np.ascontiguousarray(plan.weights[rows][:, components]) if len(rows) else plan.weights[:1, components]
    out = np.empty((len(codes), len(kb.classes)))
    # (the families' weights are read at each chosen component's place in the knowledge base:
    # gathering them for ~150 lumps cost more than the loop's reads)
    inside = EVIDENCE_KERNEL.get()(
        codes, assessed, plan.n_codes, alone, plan.kind, offset, plan.center, plan.log_space, plan.edges, weights,
        log_weight, start, stop, component_class, chosen,
        ranged_of_row, ranged, plan.families, plan.parent_col, parent_in, plan.n_levels, plan.parent_log, kid_in, plan.kid_col,
        plan.kid_kind, plan.kid_offset, plan.kid_center, plan.kid_log, plan.kid_weights, plan.family_type, level_extra_of_row,
        level_extra, out)
    return out if inside else None

