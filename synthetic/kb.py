"""The compiled knowledge base: etiology classes and a finite mixture of components.

The knowledge files (``synthetic/knowledge/``) are parsed by :mod:`crampdx.synthetic.parse`
and compiled by :mod:`crampdx.synthetic.compile` into a :class:`KnowledgeBase`: a mixture of
*components* — (class, sub-profile, age band, sex) — with per-component tables for every
finding (:mod:`crampdx.synthetic.tables`). The generator samples from that mixture and the
posterior inverts it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from crampdx.contract.schema import Schema
from crampdx.errors import UserFacingError

__all__ = ["AGE", "FEMALE", "SEX", "EtiologyClass", "KnowledgeBase", "KnowledgeError", "Profile"]

AGE, SEX, FEMALE = "age", "sex", "female"


class KnowledgeError(ValueError, UserFacingError):
    """The knowledge file is malformed; the message names every entry and field at fault."""


@dataclass(frozen=True)
class Profile:
    """A sub-profile of a class (e.g. hypokalemia from diuretics), one mixture part."""

    id: str
    name: str
    weight: float
    icd10: str | None


@dataclass(frozen=True)
class EtiologyClass:
    """One etiology class: stable id, display name, ICD-10-CM code, prior and sub-profiles."""

    id: str
    name: str
    icd10: str | None
    icd10_note: str | None
    prior: float  # normalised over classes
    prior_src: str
    summary: str
    profiles: tuple[Profile, ...]


@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    """The compiled knowledge base.

    Attributes
    ----------
    classes : tuple of EtiologyClass
        In file order; ``class_ids`` gives the posterior's column order.
    component_class, component_profile, component_band, component_sex : numpy.ndarray
        For each mixture component (K of them): its class index, profile index (into
        ``profiles``), age band and sex (0 female, 1 male).
    component_log_weight : numpy.ndarray
        log p(component), summing (in probability) to 1.
    tables : dict
        Finding id -> compiled table (:mod:`synthetic.tables`).
    children : dict
        Parent finding id -> tuple of child finding ids it conditions.
    panels : tuple of (float, tuple of int)
        Assessment rate and the schema positions of findings assessed together.
    workups : tuple of Workup
        How thorough a case's workup is, drawn per case independently of its etiology
        (:class:`crampdx.synthetic.parse.Workup`).
    """

    schema: Schema
    source: str
    sha256: str
    title: str
    references: Mapping[str, str]
    decisions: tuple[Mapping[str, str], ...]
    classes: tuple[EtiologyClass, ...]
    profiles: tuple[tuple[int, str], ...]  # (class index, profile id)
    band_edges: np.ndarray
    component_class: np.ndarray
    component_profile: np.ndarray
    component_band: np.ndarray
    component_sex: np.ndarray
    component_log_weight: np.ndarray
    tables: Mapping[str, Any]
    children: Mapping[str, tuple[str, ...]]
    panels: tuple[tuple[float, tuple[int, ...]], ...]
    document: Mapping[str, Any]
    workups: tuple[Any, ...] = ()

    @property
    def class_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.classes)

    @property
    def n_components(self) -> int:
        return len(self.component_class)

    @cached_property
    def log_prior(self) -> np.ndarray:
        """log prior of each class (read-only), worked out once."""
        log_prior = np.log([c.prior for c in self.classes])
        log_prior.flags.writeable = False
        return log_prior

    @cached_property
    def parent_of(self) -> dict[str, str]:
        """Child finding id -> its parent's (the inverse of ``children``), worked out once."""
        return {child: parent for parent, kids in self.children.items() for child in kids}

    def class_of(self, class_id: str) -> EtiologyClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(f"unknown etiology class {class_id!r}")

    def assessment_rates(self) -> np.ndarray:
        """Probability that each finding (schema order) is assessed in a full workup (a brief
        workup then keeps a random few of those)."""
        rates = np.zeros(len(self.schema))
        for rate, positions in self.panels:
            rates[list(positions)] = rate
        return rates
