"""The layout of the exact posterior's matrix product, worked out once per knowledge base.

:func:`~crampdx.synthetic.posterior.component_log_joint` computes ``log p(x_S, component)``
as one product of a design (one-hot levels, quadratic numeric terms) with per-component
log-weights. Which findings stand alone and which belong to a parent -> children family,
where each one's column is and the stacked weights of every level finding and of every
family's children under each parent level do not depend on the cases: :func:`joint_plan`
keeps them with the knowledge base, so a call only selects the assessed findings' parts
(the atypical check calls it for every block of reference cases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.tables import LevelTable

__all__ = ["Family", "JointPlan", "joint_plan", "level_onehot"]


@dataclass(frozen=True, eq=False)
class Family:
    """A parent finding with its children: one joint factor of the mixture's components."""

    parent: str
    parent_column: int
    parent_table: LevelTable
    parent_log: np.ndarray  # (K, parent levels): log p(parent level | component)
    kid_ids: tuple[str, ...]
    kid_columns: np.ndarray
    kid_tables: tuple
    kid_owner: np.ndarray  # for each row of kid_weights, the index of its child
    kid_weights: tuple[np.ndarray, ...]  # per parent level: every child's log-weights stacked


@dataclass(frozen=True, eq=False)
class JointPlan:
    """Where each finding's part of the product is (see the module docstring)."""

    level_columns: np.ndarray  # schema columns of the stand-alone level findings
    level_widths: np.ndarray  # their numbers of levels
    level_owner: np.ndarray  # for each row of level_weights, the index of its finding
    level_weights: np.ndarray  # (sum of widths, K): their log-weights stacked
    others: tuple[tuple[str, int, object], ...]  # stand-alone numeric and age findings: (id, column, table)
    families: tuple[Family, ...]
    has_table: np.ndarray  # per schema column: whether the knowledge base holds its table


def joint_plan(kb: KnowledgeBase) -> JointPlan:
    """The plan of ``kb``'s tables, made on first use and kept with it (a knowledge base is
    frozen; :func:`dataclasses.replace` makes a new one, with its own plan)."""
    plan = kb.__dict__.get("_joint_plan")
    if plan is None:
        plan = _make_plan(kb)
        object.__setattr__(kb, "_joint_plan", plan)  # a frozen dataclass: past its __setattr__
    return plan


def _make_plan(kb: KnowledgeBase) -> JointPlan:
    schema = kb.schema
    grouped = set(kb.children) | {c for kids in kb.children.values() for c in kids}
    alone = [fid for fid in schema.ids if fid in kb.tables and fid not in grouped]
    levels = [fid for fid in alone if isinstance(kb.tables[fid], LevelTable)]
    widths = np.array([kb.tables[fid].n_features for fid in levels], dtype=np.int64)
    level_weights = np.ascontiguousarray(np.vstack([kb.tables[fid].log_weights() for fid in levels]) if levels
                                         else np.zeros((0, kb.n_components)))  # rows are selected: row-major
    families = []
    for parent, kids in kb.children.items():
        if parent not in kb.tables:
            continue
        parent_log = kb.tables[parent].log_weights().T
        kid_widths = [kb.tables[c].n_features for c in kids]
        families.append(Family(
            parent=parent, parent_column=schema.position(parent), parent_table=kb.tables[parent], parent_log=parent_log,
            kid_ids=tuple(kids), kid_columns=np.array([schema.position(c) for c in kids], dtype=np.int64),
            kid_tables=tuple(kb.tables[c] for c in kids), kid_owner=np.repeat(np.arange(len(kids)), kid_widths),
            kid_weights=tuple(np.vstack([kb.tables[c].given(level).log_weights() for c in kids])
                              for level in range(parent_log.shape[1]))))
    level_set = set(levels)
    plan = JointPlan(
        level_columns=np.array([schema.position(fid) for fid in levels], dtype=np.int64), level_widths=widths,
        level_owner=np.repeat(np.arange(len(levels)), widths), level_weights=level_weights,
        others=tuple((fid, schema.position(fid), kb.tables[fid]) for fid in alone if fid not in level_set),
        families=tuple(families), has_table=np.array([fid in kb.tables for fid in schema.ids]))
    for array in [plan.level_columns, plan.level_widths, plan.level_owner, plan.level_weights, plan.has_table]:
        array.flags.writeable = False  # kept with the knowledge base and shared
    for family in plan.families:
        for array in [family.parent_log, family.kid_columns, family.kid_owner, *family.kid_weights]:
            array.flags.writeable = False
    return plan


def level_onehot(codes: np.ndarray, widths: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The one-hot design of several level findings side by side (``widths`` levels each,
    read from ``columns`` of ``codes``), as each table's ``design`` would give it."""
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    values = codes[:, columns]
    rows, which = np.nonzero(~np.isnan(values))
    onehot = np.zeros((len(codes), int(np.sum(widths))))
    onehot[rows, offsets[which] + values[rows, which].astype(np.int64)] = 1.0
    return onehot
