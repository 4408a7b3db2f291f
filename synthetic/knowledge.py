"""Load, validate and compile the declarative knowledge base (``knowledge/*.toml``).

The file format is described at the top of ``knowledge/leg_cramps.toml``. Loading checks
every entry against the finding schema and fails with one :class:`KnowledgeError` listing
every problem, each naming the entry and the field (``classes.hypokalemia.findings.
potassium.sd: must be a positive number (got -0.3)``).

Compilation turns the file into a finite mixture of *components* — (class, sub-profile,
age band, sex) — with per-component tables for every finding (:mod:`synthetic.tables`).
The generator samples from that mixture and the posterior inverts it exactly.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from scipy.special import ndtr

from model.schema import Finding, Schema, load_schema
from synthetic.tables import AgeTable, ConditionalTable, LevelTable, NormalTable

__all__ = ["EtiologyClass", "KnowledgeBase", "KnowledgeError", "Profile", "load_knowledge", "parse_knowledge"]

KNOWLEDGE_PATH = Path(__file__).parent / "knowledge" / "leg_cramps.toml"
FORMAT_VERSION = 1
AGE, SEX, FEMALE = "age", "sex", "female"
SEED_REFERENCES = range(1, 10)  # the seed cites references 1-9
_SRC_SEED = re.compile(r"seed:\s*(\d+(?:\s*,\s*\d+)*)")
_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_TOL = 1e-6


class KnowledgeError(ValueError):
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

    @property
    def class_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.classes)

    @property
    def n_components(self) -> int:
        return len(self.component_class)

    def class_of(self, class_id: str) -> EtiologyClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(f"unknown etiology class {class_id!r}")

    def assessment_rates(self) -> np.ndarray:
        """Probability that each finding (schema order) is assessed."""
        rates = np.zeros(len(self.schema))
        for rate, positions in self.panels:
            rates[list(positions)] = rate
        return rates


# ----------------------------------------------------------------------------- validation

class _Problems(list):
    def need(self, condition: bool, where: str, message: str) -> bool:
        if not condition:
            self.append(f"{where}: {message}")
        return bool(condition)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_src(raw: Mapping, where: str, problems: _Problems) -> None:
    src = raw.get("src")
    if not problems.need(isinstance(src, str) and src.strip() != "", f"{where}.src",
                         "every number needs its provenance: 'seed:N' or 'assumption: <reason>'"):
        return
    refs = [int(n) for group in _SRC_SEED.findall(src) for n in group.split(",")]
    bad = [n for n in refs if n not in SEED_REFERENCES]
    problems.need(not bad, f"{where}.src", f"the seed has references 1-9, not {bad}")
    has_assumption = re.search(r"assumption:\s*\S+(\s+\S+)+", src) is not None
    problems.need(bool(refs) or has_assumption, f"{where}.src",
                  f"must cite the seed ('seed:4') or say 'assumption: <reason in a few words>' (got {src!r})")


def _check_keys(raw: Mapping, allowed: set[str], where: str, problems: _Problems) -> None:
    for key in raw:
        problems.need(key in allowed, f"{where}.{key}", f"unknown field (expected one of {', '.join(sorted(allowed))})")


def _probability(value, where: str, problems: _Problems) -> float | None:
    if problems.need(_is_number(value) and 0.0 <= value <= 1.0, where, f"must be a probability between 0 and 1 (got {value!r})"):
        return float(value)
    return None


# Parameter parsers, one per finding kind. Each returns the parameter in the form the
# compiler uses: a probability vector over levels, or (loc, scale) in t-space.

def _binary_param(value, where: str, finding: Finding, problems: _Problems):
    p = _probability(value, where, problems)
    return None if p is None else np.array([1.0 - p, p])


def _levels_param(value, where: str, finding: Finding, problems: _Problems):
    if not problems.need(isinstance(value, Mapping) and value, where, "must be a table of level = probability"):
        return None
    vector = np.zeros(len(finding.levels))
    ok = True
    for level, p in value.items():
        if not problems.need(level in finding.level_ids, f"{where}.{level}",
                             f"unknown level of {finding.id} (expected one of {', '.join(finding.level_ids)})"):
            ok = False
            continue
        p = _probability(p, f"{where}.{level}", problems)
        ok = ok and p is not None
        if p is not None:
            vector[finding.code(level)] = p
    if ok and not problems.need(abs(vector.sum() - 1.0) < _TOL, where, f"level probabilities must sum to 1 (they sum to {vector.sum():.6g})"):
        return None
    return vector if ok else None


_NUMERIC_KEYS = {"normal": ("mean", "sd"), "lognormal": ("median", "log_sd")}


def _numeric_param(value, where: str, finding: Finding, problems: _Problems, dist: str):
    if not problems.need(isinstance(value, Mapping), where, "must be a table of distribution parameters"):
        return None
    location_key, scale_key = _NUMERIC_KEYS[dist]
    location, scale = value.get(location_key), value.get(scale_key)
    ok = problems.need(_is_number(location), f"{where}.{location_key}", f"a number is required for a {dist} distribution (got {location!r})")
    ok &= problems.need(_is_number(scale) and scale > 0, f"{where}.{scale_key}", f"must be a positive number (got {scale!r})")
    if not ok:
        return None
    low, high = finding.hard
    if dist == "lognormal":
        ok = problems.need(location > 0, f"{where}.{location_key}", f"a median must be positive (got {location!r})")
        location = math.log(location) if ok else 0.0
        low, high = math.log(low) if low > 0 else -math.inf, math.log(high)
    inside = low <= location <= high
    problems.need(inside, f"{where}.{location_key}", f"lies outside the plausible range {finding.hard[0]:g}–{finding.hard[1]:g} {finding.unit}")
    return (float(location), float(scale)) if ok and inside else None


@dataclass(frozen=True)
class _Spec:
    """A parsed distribution of one finding: a base parameter and age-band overrides."""

    base: Any
    by_age: tuple[tuple[float, Any], ...]
    dist: str | None  # numeric only

    def at_age(self, age: float):
        param = self.base
        for threshold, override in self.by_age:
            if age >= threshold:
                param = override
        return param


def _parse_spec(raw, where: str, finding: Finding, edges: list[float], problems: _Problems) -> _Spec | None:
    if not problems.need(isinstance(raw, Mapping), where, "must be a table (e.g. { p = 0.3, src = \"seed:4\" })"):
        return None
    before = len(problems)
    _check_src(raw, where, problems)
    dist = None
    if finding.kind == "binary":
        _check_keys(raw, {"p", "by_age", "src"}, where, problems)
        parse: Callable = _binary_param
        base = parse(raw.get("p"), f"{where}.p", finding, problems)
    elif finding.kind == "categorical":
        _check_keys(raw, {"levels", "by_age", "src"}, where, problems)
        parse = _levels_param
        base = parse(raw.get("levels"), f"{where}.levels", finding, problems)
    else:
        dist = raw.get("dist")
        if not problems.need(dist in _NUMERIC_KEYS, f"{where}.dist", f"must be one of {', '.join(_NUMERIC_KEYS)} (got {dist!r})"):
            return None
        _check_keys(raw, {"dist", *_NUMERIC_KEYS[dist], "by_age", "src"}, where, problems)

        def parse(value, w, f, p, dist=dist):
            return _numeric_param(value, w, f, p, dist)

        base = parse({k: v for k, v in raw.items() if k in _NUMERIC_KEYS[dist]}, where, finding, problems)
    by_age = []
    raw_by_age = raw.get("by_age", [])
    if problems.need(isinstance(raw_by_age, list), f"{where}.by_age", "must be a list of [age, value] pairs"):
        previous = -math.inf
        for i, pair in enumerate(raw_by_age):
            w = f"{where}.by_age[{i}]"
            if not problems.need(isinstance(pair, list) and len(pair) == 2, w, "must be an [age, value] pair"):
                continue
            age, value = pair
            problems.need(age in edges, w, f"age {age!r} must be one of the age band edges {edges}")
            problems.need(_is_number(age) and age > previous, w, "ages must increase")
            previous = age if _is_number(age) else previous
            by_age.append((age, parse(value, w, finding, problems)))
    if len(problems) > before:
        return None
    return _Spec(base=base, by_age=tuple(by_age), dist=dist)


# ---------------------------------------------------------------------------- compilation

@dataclass
class _RawProfile:
    id: str
    name: str
    weight: float
    icd10: str | None
    age: tuple[float, float, float, float] | None  # mean, sd, min, max
    female: float | None
    findings: dict[str, _Spec]


def _parse_age(raw, where: str, edges: list[float], problems: _Problems):
    if not problems.need(isinstance(raw, Mapping), where, "must be a table { mean, sd, src } with optional min, max"):
        return None
    _check_keys(raw, {"mean", "sd", "min", "max", "src"}, where, problems)
    _check_src(raw, where, problems)
    mean, sd = raw.get("mean"), raw.get("sd")
    low, high = raw.get("min", edges[0]), raw.get("max", edges[-1])
    ok = problems.need(_is_number(mean) and edges[0] <= mean < edges[-1], f"{where}.mean", f"must be an age within {edges[0]}–{edges[-1]}")
    ok &= problems.need(_is_number(sd) and sd > 0, f"{where}.sd", f"must be a positive number (got {sd!r})")
    ok &= problems.need(low in edges and high in edges and low < high, f"{where}.min", f"min and max must be age band edges {edges}, min < max")
    return (float(mean), float(sd), float(low), float(high)) if ok else None


def _band_probabilities(age, edges: np.ndarray) -> np.ndarray:
    mean, sd, low, high = age
    cdf = ndtr((np.clip(edges, low, high) - mean) / sd)
    mass = np.diff(cdf)
    return mass / mass.sum()


def _parse_findings(raw, where: str, schema: Schema, edges, problems: _Problems, *, demographics_allowed=False) -> dict[str, _Spec]:
    specs = {}
    if raw is None:
        return specs
    if not problems.need(isinstance(raw, Mapping), where, "must be a table of finding = distribution"):
        return specs
    for fid, spec_raw in raw.items():
        w = f"{where}.{fid}"
        if not problems.need(fid in schema, w, "unknown finding (not in model/findings.toml)"):
            continue
        if not demographics_allowed and not problems.need(fid not in (AGE, SEX), w, "age and sex come from the class's 'age' and 'female' fields"):
            continue
        spec = _parse_spec(spec_raw, w, schema[fid], edges, problems)
        if spec is not None:
            specs[fid] = spec
    return specs


def parse_knowledge(document: Mapping, *, schema: Schema | None = None, source: str = "knowledge", sha256: str = "") -> KnowledgeBase:
    """Validate a parsed knowledge document and compile it.

    Parameters
    ----------
    document : mapping
        The TOML document as parsed by :mod:`tomllib`.
    schema : Schema, optional
        The finding schema to validate against (the shipped one by default).
    source : str
        Name used in error messages.

    Raises
    ------
    KnowledgeError
        Listing every problem found, each naming the entry and the field.
    """
    schema = schema or load_schema()
    problems = _Problems()
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise KnowledgeError(f"{source}: format_version must be {FORMAT_VERSION} (got {version!r})")
    for fid in (AGE, SEX):
        if fid not in schema:
            raise KnowledgeError(f"{source}: the schema must define the finding {fid!r}")

    demographics = document.get("demographics", {})
    edges = demographics.get("age_band_edges")
    if not (isinstance(edges, list) and len(edges) >= 2 and all(_is_number(e) and float(e).is_integer() for e in edges)
            and all(a < b for a, b in zip(edges, edges[1:]))):
        raise KnowledgeError(f"{source}: demographics.age_band_edges must be increasing whole years")
    _check_src(demographics, "demographics", problems)
    age_hard = schema[AGE].hard
    problems.need(edges[0] <= age_hard[0] and edges[-1] > age_hard[1], "demographics.age_band_edges",
                  f"must cover the schema's age range {age_hard[0]:g}–{age_hard[1]:g}")

    references = document.get("references", {})
    problems.need(isinstance(references, Mapping) and set(references) == {str(n) for n in SEED_REFERENCES},
                  "references", "must name the seed's references 1-9")

    decisions = document.get("decisions", [])
    for i, decision in enumerate(decisions):
        w = f"decisions[{i}]"
        _check_keys(decision, {"cause", "decision", "into", "reason"}, w, problems)
        problems.need(decision.get("decision") in ("merged", "demoted", "sub-profile"), f"{w}.decision", "must be merged, demoted or sub-profile")
        for key in ("cause", "into", "reason"):
            problems.need(isinstance(decision.get(key), str) and decision[key], f"{w}.{key}", "a non-empty text is required")
        if isinstance(decision.get("reason"), str):
            _check_src({"src": decision["reason"]}, w + ".reason", problems)

    background = _parse_findings(document.get("background"), "background", schema, edges, problems)
    declared = document.get("background") if isinstance(document.get("background"), Mapping) else {}
    for finding in schema:
        if finding.id not in (AGE, SEX):  # an invalid entry is reported above, not as missing
            problems.need(finding.id in declared, f"background.{finding.id}", "missing: every finding needs a background distribution")

    constraints = {}
    for fid, raw in document.get("constraints", {}).items():
        w = f"constraints.{fid}"
        if not problems.need(fid in schema and not schema[fid].is_numeric, w, "constraints apply to binary or categorical findings of the schema"):
            continue
        _check_keys(raw, {"sex", "age", "otherwise", "src"}, w, problems)
        _check_src(raw, w, problems)
        sex = raw.get("sex")
        problems.need(sex is None or sex in schema[SEX].level_ids, f"{w}.sex", f"must be one of {', '.join(schema[SEX].level_ids)}")
        age = raw.get("age", [edges[0], edges[-1]])
        problems.need(isinstance(age, list) and len(age) == 2 and all(a in edges for a in age) and age[0] < age[1],
                      f"{w}.age", f"must be [from, to) with both age band edges {edges}")
        problems.need(raw.get("otherwise") in schema[fid].level_ids, f"{w}.otherwise", f"must be a level of {fid}")
        constraints[fid] = raw

    children: dict[str, tuple[str, ...]] = {}
    overrides: dict[str, dict[int, _Spec]] = {}
    for parent, raw in document.get("dependencies", {}).items():
        w = f"dependencies.{parent}"
        if not problems.need(parent in schema and not schema[parent].is_numeric and parent not in (AGE, SEX), w,
                             "a parent must be a binary or categorical finding other than age and sex"):
            continue
        _check_keys(raw, {"when", "src"}, w, problems)
        _check_src(raw, w, problems)
        for level, child_specs in raw.get("when", {}).items():
            if not problems.need(level in schema[parent].level_ids, f"{w}.when.{level}", f"unknown level of {parent}"):
                continue
            for child, spec in _parse_findings(child_specs, f"{w}.when.{level}", schema, edges, problems).items():
                if child in constraints or child in overrides and child not in children.get(parent, ()):
                    problems.append(f"{w}.when.{level}.{child}: a child may have one parent and no constraint")
                    continue
                overrides.setdefault(child, {})[schema[parent].code(level)] = spec
                if child not in children.get(parent, ()):
                    children[parent] = children.get(parent, ()) + (child,)
    for parent in children:
        problems.need(parent not in overrides, f"dependencies.{parent}", "a parent may not itself be a child (one level of dependency)")

    raw_classes = document.get("classes", {})
    problems.need(isinstance(raw_classes, Mapping) and len(raw_classes) >= 2, "classes", "at least two classes are required")
    classes, raw_profiles = [], []
    for cid, raw in raw_classes.items():
        w = f"classes.{cid}"
        problems.need(cid.isidentifier() and cid == cid.lower(), w, "class id must be snake_case")
        _check_keys(raw, {"name", "icd10", "icd10_note", "summary", "prior", "age", "female", "findings", "profiles"}, w, problems)
        for key in ("name", "summary"):
            problems.need(isinstance(raw.get(key), str) and raw[key].strip(), f"{w}.{key}", "a non-empty text is required")
        icd10 = raw.get("icd10")
        problems.need(icd10 is None or (isinstance(icd10, str) and _ICD10.match(icd10)), f"{w}.icd10", f"not an ICD-10-CM code: {icd10!r}")
        prior = raw.get("prior", {})
        _check_src(prior, f"{w}.prior", problems)
        problems.need(_is_number(prior.get("value")) and prior.get("value") > 0, f"{w}.prior.value", "must be a positive weight")
        class_age = _parse_age(raw.get("age"), f"{w}.age", edges, problems)
        female_raw = raw.get("female", {})
        _check_src(female_raw, f"{w}.female", problems)
        class_female = _probability(female_raw.get("p"), f"{w}.female.p", problems)
        class_findings = _parse_findings(raw.get("findings"), f"{w}.findings", schema, edges, problems)
        profiles_raw = raw.get("profiles") or {"main": {"name": raw.get("name", cid), "weight": {"value": 1.0, "src": "assumption: single profile"}}}
        profiles = []
        for pid, praw in profiles_raw.items():
            pw = f"{w}.profiles.{pid}"
            _check_keys(praw, {"name", "weight", "icd10", "age", "female", "findings"}, pw, problems)
            weight = praw.get("weight", {})
            _check_src(weight, f"{pw}.weight", problems)
            value = _probability(weight.get("value"), f"{pw}.weight.value", problems)
            age = _parse_age(praw["age"], f"{pw}.age", edges, problems) if "age" in praw else class_age
            female = class_female
            if "female" in praw:
                _check_src(praw["female"], f"{pw}.female", problems)
                female = _probability(praw["female"].get("p"), f"{pw}.female.p", problems)
            specs = dict(class_findings)
            specs.update(_parse_findings(praw.get("findings"), f"{pw}.findings", schema, edges, problems))
            profiles.append(_RawProfile(pid, praw.get("name", pid), value or 0.0, praw.get("icd10"), age, female, specs))
        total = sum(p.weight for p in profiles)
        problems.need(abs(total - 1.0) < _TOL, f"{w}.profiles", f"profile weights must sum to 1 (they sum to {total:.6g})")
        if isinstance(raw.get("name"), str) and _is_number(prior.get("value")):
            classes.append(EtiologyClass(
                id=cid, name=raw["name"], icd10=icd10, icd10_note=raw.get("icd10_note"), prior=float(prior["value"]),
                prior_src=prior.get("src", ""), summary=raw.get("summary", ""),
                profiles=tuple(Profile(p.id, p.name, p.weight, p.icd10) for p in profiles)))
            raw_profiles.append(profiles)
    if problems:
        raise KnowledgeError(f"{source}: " + "; ".join(problems))

    return _compile(document, schema, source, sha256, np.asarray(edges, dtype=float), classes, raw_profiles,
                    background, constraints, children, overrides, problems)


def _compile(document, schema, source, sha256, edges, classes, raw_profiles, background, constraints, children, overrides, problems) -> KnowledgeBase:
    total_prior = sum(c.prior for c in classes)
    classes = [EtiologyClass(**{**c.__dict__, "prior": c.prior / total_prior}) for c in classes]
    comp_class, comp_profile, comp_band, comp_sex, comp_weight, comp_specs = [], [], [], [], [], []
    profile_index: list[tuple[int, str]] = []
    n_bands = len(edges) - 1
    for ci, (cls, profiles) in enumerate(zip(classes, raw_profiles)):
        for profile in profiles:
            profile_index.append((ci, profile.id))
            bands = _band_probabilities(profile.age, edges)
            for band in range(n_bands):
                for sex, p_sex in enumerate((profile.female, 1.0 - profile.female)):
                    weight = cls.prior * profile.weight * bands[band] * p_sex
                    if weight <= 0:
                        continue
                    comp_class.append(ci)
                    comp_profile.append(len(profile_index) - 1)
                    comp_band.append(band)
                    comp_sex.append(sex)
                    comp_weight.append(weight)
                    comp_specs.append(profile.findings)
    comp_band = np.asarray(comp_band)
    comp_sex = np.asarray(comp_sex)
    comp_weight = np.asarray(comp_weight)
    female_code = schema[SEX].code(FEMALE)

    def build(finding: Finding, spec_of: Callable[[int], _Spec], constrained: bool):
        if finding.is_numeric:
            params = np.array([spec_of(k).at_age(edges[comp_band[k]]) for k in range(len(comp_band))])
            dists = {spec_of(k).dist for k in range(len(comp_band))}
            if len(dists) > 1:
                problems.append(f"{finding.id}: all classes must use the same distribution family (found {', '.join(sorted(dists))})")
                return None
            log_space = dists.pop() == "lognormal"
            lo, hi = finding.reference
            center = math.log(math.sqrt(lo * hi)) if log_space else (lo + hi) / 2
            return NormalTable(params[:, 0], params[:, 1], finding.hard[0], finding.hard[1], log_space, center)
        probs = np.array([spec_of(k).at_age(edges[comp_band[k]]) for k in range(len(comp_band))])
        rule = constraints.get(finding.id) if constrained else None
        if rule is not None:
            age_from, age_to = rule.get("age", [edges[0], edges[-1]])
            allowed = (edges[comp_band] >= age_from) & (edges[comp_band + 1] <= age_to)
            if rule.get("sex") is not None:
                allowed &= comp_sex == schema[SEX].code(rule["sex"])
            forced = np.zeros(len(finding.levels))
            forced[finding.code(rule["otherwise"])] = 1.0
            probs[~allowed] = forced
        return LevelTable(probs)

    tables: dict[str, Any] = {}
    for finding in schema:
        if finding.id == AGE:
            tables[AGE] = AgeTable(edges, comp_band)
            continue
        if finding.id == SEX:
            tables[SEX] = LevelTable(np.eye(2)[np.where(comp_sex == 0, female_code, 1 - female_code)])
            continue
        default = build(finding, lambda k, f=finding.id: comp_specs[k].get(f, background[f]), True)
        if finding.id in overrides:
            parent = next(p for p, kids in children.items() if finding.id in kids)
            variants = tuple(
                build(finding, lambda k, s=overrides[finding.id][code]: s, False) if code in overrides[finding.id] else None
                for code in range(len(schema[parent].levels)))
            tables[finding.id] = ConditionalTable(parent, default, variants)
        else:
            tables[finding.id] = default
    _check_constraints_fit(classes, raw_profiles, profile_index, comp_profile, comp_weight, tables, constraints, background, schema, problems)
    if problems:
        raise KnowledgeError(f"{source}: " + "; ".join(problems))

    return KnowledgeBase(
        schema=schema, source=source, sha256=sha256, title=document.get("title", ""),
        references=dict(document.get("references", {})), decisions=tuple(document.get("decisions", [])),
        classes=tuple(classes), profiles=tuple(profile_index), band_edges=edges,
        component_class=np.asarray(comp_class), component_profile=np.asarray(comp_profile),
        component_band=comp_band, component_sex=comp_sex,
        component_log_weight=np.log(comp_weight / comp_weight.sum()),
        tables=tables, children=children, panels=_parse_assessment(document.get("assessment", {}), schema, problems, source),
        document=document,
    )


def _check_constraints_fit(classes, raw_profiles, profile_index, comp_profile, comp_weight, tables, constraints, background, schema, problems):
    """A class entry that makes a constrained finding likely must not put its patients where
    the constraint forbids it (a raloxifene profile that admits men, say)."""
    comp_profile = np.asarray(comp_profile)
    for pi, (ci, pid) in enumerate(profile_index):
        profile = next(p for p in raw_profiles[ci] if p.id == pid)
        rows = comp_profile == pi
        for fid, rule in constraints.items():
            spec = profile.findings.get(fid)
            if spec is None or spec is background.get(fid):
                continue
            other = schema[fid].code(rule["otherwise"])
            wanted = 1.0 - np.asarray(spec.base)[other]  # P(not 'otherwise') the entry asks for
            kept = float(np.average(1.0 - tables[fid].probs[rows, other], weights=comp_weight[rows]))
            if wanted - kept > 0.01:
                problems.append(
                    f"classes.{classes[ci].id}.profiles.{pid}.findings.{fid}: the constraint on {fid} removes "
                    f"{wanted - kept:.1%} of this profile's probability; restrict the profile's age or sex to match it")


def _parse_assessment(raw: Mapping, schema: Schema, problems: _Problems, source: str):
    """Panels of findings assessed together; every finding is in exactly one panel."""
    sections = raw.get("sections", {})
    rate_of = {}
    for section in schema.sections:
        spec = sections.get(section, {})
        _check_src(spec, f"assessment.sections.{section}", problems)
        rate_of[section] = _probability(spec.get("rate"), f"assessment.sections.{section}.rate", problems)
    panels, seen = [], set()
    for name, spec in raw.get("panels", {}).items():
        w = f"assessment.panels.{name}"
        _check_keys(spec, {"findings", "rate", "src"}, w, problems)
        _check_src(spec, w, problems)
        rate = _probability(spec.get("rate"), f"{w}.rate", problems)
        members = spec.get("findings", [])
        for fid in members:
            problems.need(fid in schema, f"{w}.findings", f"unknown finding {fid!r}")
            problems.need(fid not in seen, f"{w}.findings", f"{fid!r} is already in another panel")
            seen.add(fid)
        if rate is not None and all(f in schema for f in members):
            panels.append((rate, tuple(schema.position(f) for f in members)))
    for finding in schema:
        if finding.id not in seen and rate_of.get(finding.section) is not None:
            panels.append((rate_of[finding.section], (schema.position(finding.id),)))
    if problems:
        raise KnowledgeError(f"{source}: " + "; ".join(problems))
    return tuple(panels)


def load_knowledge(path: str | Path | None = None, *, schema: Schema | None = None) -> KnowledgeBase:
    """Load, validate and compile a knowledge file (the shipped one by default).

    Raises
    ------
    KnowledgeError
        If the file is not valid TOML or does not validate; the message names every entry
        and field at fault.
    """
    path = Path(path) if path is not None else KNOWLEDGE_PATH
    if path == KNOWLEDGE_PATH and schema is None:
        return _default_knowledge()
    return _load(path, schema)


def _load(path: Path, schema: Schema | None) -> KnowledgeBase:
    data = path.read_bytes()
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise KnowledgeError(f"{path.name}: not valid TOML ({error})") from None
    return parse_knowledge(document, schema=schema, source=path.name, sha256=hashlib.sha256(data).hexdigest())


@cache
def _default_knowledge() -> KnowledgeBase:
    return _load(KNOWLEDGE_PATH, None)
