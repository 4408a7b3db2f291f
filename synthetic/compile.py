"""Compile a parsed knowledge document into a finite mixture.

Each *component* is one (etiology class, sub-profile, age band, sex) with its prior weight;
every finding gets a table of its distribution in every component
(:mod:`crampdx.synthetic.tables`). Given its component the findings are independent, apart
from the declared parent -> child dependencies, which is what makes the posterior exact.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np
from scipy.special import ndtr

from crampdx.contract.schema import Finding
from crampdx.synthetic.entries import Problems, Spec
from crampdx.synthetic.kb import AGE, FEMALE, SEX, KnowledgeBase, KnowledgeError
from crampdx.synthetic.parse import ParsedKnowledge
from crampdx.synthetic.tables import AgeTable, ConditionalTable, LevelTable, NormalTable

__all__ = ["compile_knowledge"]


def _band_probabilities(age: tuple[float, float, float, float], edges: np.ndarray, floor: float) -> np.ndarray:
    """The share of a truncated normal age distribution that falls in each age band, with
    ``floor`` of it spread evenly over the bands inside the declared ``[min, max]``."""
    mean, sd, low, high = age
    cdf = ndtr((np.clip(edges, low, high) - mean) / sd)
    mass = np.diff(cdf)
    inside = (edges[:-1] < high) & (edges[1:] > low)
    return (1.0 - floor) * mass / mass.sum() + floor * inside / inside.sum()


class _Components:
    """The mixture's components, enumerated: class, profile, band, sex, weight, specs."""

    def __init__(self, parsed: ParsedKnowledge, edges: np.ndarray):
        total_prior = sum(c.prior for c in parsed.classes)
        self.classes = tuple(replace(c, prior=c.prior / total_prior) for c in parsed.classes)
        cls, profile, band, sex, weight, specs = [], [], [], [], [], []
        self.profile_index: list[tuple[int, str]] = []
        for ci, (etiology, profiles) in enumerate(zip(self.classes, parsed.profiles)):
            for spec in profiles:
                self.profile_index.append((ci, spec.id))
                bands = _band_probabilities(spec.age, edges, parsed.floors.age)
                for b in range(len(edges) - 1):
                    for s, p_sex in enumerate((spec.female, 1.0 - spec.female)):
                        w = etiology.prior * spec.weight * bands[b] * p_sex
                        if w > 0:
                            cls.append(ci)
                            profile.append(len(self.profile_index) - 1)
                            band.append(b)
                            sex.append(s)
                            weight.append(w)
                            specs.append(spec.findings)
        self.cls, self.profile = np.asarray(cls), np.asarray(profile)
        self.band, self.sex, self.weight = np.asarray(band), np.asarray(sex), np.asarray(weight)
        self.specs = specs

    def __len__(self) -> int:
        return len(self.cls)


def compile_knowledge(parsed: ParsedKnowledge) -> KnowledgeBase:
    """Turn a :class:`~crampdx.synthetic.parse.ParsedKnowledge` into a :class:`KnowledgeBase`.

    Raises
    ------
    KnowledgeError
        When entries are valid one by one but not together: one finding with two
        distribution families, or a class entry that a constraint would silently cut.
    """
    schema = parsed.schema
    edges = np.asarray(parsed.band_edges, dtype=float)
    components = _Components(parsed, edges)
    problems = Problems()
    tables: dict[str, Any] = {}
    female_code = schema[SEX].code(FEMALE)
    for finding in schema:
        if finding.id == AGE:
            tables[AGE] = AgeTable(edges, components.band)
        elif finding.id == SEX:
            tables[SEX] = LevelTable(np.eye(2)[np.where(components.sex == 0, female_code, 1 - female_code)])
        else:
            tables[finding.id] = _finding_table(finding, parsed, components, edges, problems)
    _check_constraints_fit(parsed, components, tables, problems)
    if problems:
        raise KnowledgeError(f"{parsed.source}: " + "; ".join(problems))
    return KnowledgeBase(
        schema=schema, source=parsed.source, sha256=parsed.sha256, title=parsed.title,
        references=parsed.references, decisions=parsed.decisions,
        classes=components.classes, profiles=tuple(components.profile_index), band_edges=edges,
        component_class=components.cls, component_profile=components.profile,
        component_band=components.band, component_sex=components.sex,
        component_log_weight=np.log(components.weight / components.weight.sum()),
        tables=tables, children=parsed.children,
        panels=tuple((rate, tuple(schema.position(f) for f in members)) for rate, members in parsed.panels),
        document=parsed.document, workups=parsed.workups,
    )


def _finding_table(finding: Finding, parsed: ParsedKnowledge, components: _Components, edges: np.ndarray,
                   problems: Problems):
    background = parsed.background[finding.id]
    default = _build(finding, lambda k: components.specs[k].get(finding.id, background), components, edges,
                     parsed.constraints.get(finding.id), parsed.floors.probability, problems)
    overrides = parsed.overrides.get(finding.id)
    if not overrides:
        return default
    parent = next(p for p, kids in parsed.children.items() if finding.id in kids)
    variants = tuple(
        _build(finding, lambda k, s=overrides[code]: s, components, edges, None, parsed.floors.probability, problems)
        if code in overrides else None
        for code in range(len(parsed.schema[parent].levels)))
    return ConditionalTable(parent, default, variants)


def _build(finding: Finding, spec_of: Callable[[int], Spec], components: _Components, edges: np.ndarray, rule,
           floor: float, problems: Problems):
    """One finding's table over all components; ``rule`` is its constraint, if any; every
    level keeps at least ``floor`` except where the schema rules it out (``only_when``)."""
    band, sex = components.band, components.sex
    if finding.is_numeric:
        params = np.array([spec_of(k).at_age(edges[band[k]]) for k in range(len(components))])
        dists = {spec_of(k).dist for k in range(len(components))}
        if len(dists) > 1:
            problems.append(f"{finding.id}: all classes must use the same distribution family (found {', '.join(sorted(dists))})")
            return None
        log_space = dists.pop() == "lognormal"
        lo, hi = finding.reference
        center = math.log(math.sqrt(lo * hi)) if log_space else (lo + hi) / 2
        return NormalTable(params[:, 0], params[:, 1], finding.hard[0], finding.hard[1], log_space, center)
    probs = np.array([spec_of(k).at_age(edges[band[k]]) for k in range(len(components))])
    if rule is not None:
        age_from, age_to = rule.get("age", [edges[0], edges[-1]])
        allowed = (edges[band] >= age_from) & (edges[band + 1] <= age_to)
        if rule.get("sex") is not None:
            allowed &= sex == (0 if rule["sex"] == FEMALE else 1)
        forced = np.zeros(len(finding.levels))
        forced[finding.code(rule["otherwise"])] = 1.0
        probs[~allowed] = forced
    probs = np.maximum(probs, floor)
    if finding.only_when is not None:
        probs[_ruled_out(finding, components, edges)] = np.eye(len(finding.levels))[finding.code(finding.only_when.otherwise)]
    return LevelTable(probs / probs.sum(axis=1, keepdims=True))


def _ruled_out(finding: Finding, components: _Components, edges: np.ndarray) -> np.ndarray:
    """Components in which the schema's ``only_when`` rules out every level but ``otherwise``:
    the other sex, or an age band that lies wholly outside the possible ages."""
    rule = finding.only_when
    out = np.zeros(len(components), dtype=bool)
    if rule.sex is not None:
        out |= components.sex != (0 if rule.sex == FEMALE else 1)
    if rule.age is not None:
        first, last = edges[components.band], edges[components.band + 1] - 1  # whole years in the band
        out |= (last < rule.age[0]) | (first > rule.age[1])
    return out


def _check_constraints_fit(parsed: ParsedKnowledge, components: _Components, tables, problems: Problems) -> None:
    """A class entry that makes a constrained finding likely must not put its patients where
    the constraint forbids it (a raloxifene profile that admits men, say)."""
    for pi, (ci, pid) in enumerate(components.profile_index):
        profile = next(p for p in parsed.profiles[ci] if p.id == pid)
        rows = components.profile == pi
        for fid, rule in parsed.constraints.items():
            spec = profile.findings.get(fid)
            if spec is None or spec is parsed.background.get(fid):
                continue
            other = parsed.schema[fid].code(rule["otherwise"])
            wanted = 1.0 - np.asarray(spec.base)[other]  # P(not 'otherwise') the entry asks for
            kept = float(np.average(1.0 - tables[fid].probs[rows, other], weights=components.weight[rows]))
            if wanted - kept > 0.01:
                problems.append(
                    f"classes.{components.classes[ci].id}.profiles.{pid}.findings.{fid}: the constraint on {fid} removes "
                    f"{wanted - kept:.1%} of this profile's probability; restrict the profile's age or sex to match it")
