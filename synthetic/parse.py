"""Validate a knowledge document and parse it into a typed intermediate.

The format is described at the top of ``synthetic/knowledge/leg_cramps/base.toml``. Parsing
checks every entry against the finding schema and fails with one :class:`KnowledgeError`
listing every problem, each naming the entry and the field (``classes.hypokalemia.findings.
potassium.sd: must be a positive number (got -0.3)``). The result, :class:`ParsedKnowledge`,
is what :func:`crampdx.synthetic.compile.compile_knowledge` turns into a mixture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from crampdx.contract.schema import Schema
from crampdx.synthetic.entries import (SEED_REFERENCES, TOL, Problems, Spec, check_keys, check_src, is_number,
                                       parse_spec, probability)
from crampdx.synthetic.assessment import Workup, parse_panels, parse_workups
from crampdx.synthetic.kb import AGE, SEX, EtiologyClass, KnowledgeError, Profile

__all__ = ["FORMAT_VERSION", "Floors", "ParsedKnowledge", "ProfileSpec", "parse_document"]

FORMAT_VERSION = 1
_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_CLASS_KEYS = {"name", "icd10", "icd10_note", "summary", "prior", "age", "female", "findings", "profiles"}
_PROFILE_KEYS = {"name", "weight", "icd10", "age", "female", "findings"}


@dataclass(frozen=True)
class ProfileSpec:
    """One sub-profile as parsed: its share of the class, age, sex and finding distributions
    (class entries already merged under the profile's own)."""

    id: str
    name: str
    weight: float
    icd10: str | None
    age: tuple[float, float, float, float]  # mean, sd, min, max
    female: float
    findings: Mapping[str, Spec]


@dataclass(frozen=True)
class Floors:
    """The declared floors that keep every posterior finite: every level of every binary or
    categorical finding has at least ``probability`` in every component, and every class
    keeps a share ``age`` of its patients spread over all age bands. Only the schema's
    ``only_when`` impossibilities stay at zero."""

    probability: float = 0.0
    age: float = 0.0


@dataclass(frozen=True)
class ParsedKnowledge:
    """A validated knowledge document, before compilation.

    ``classes`` carry their priors as declared (not yet normalised); ``profiles[i]`` are the
    sub-profiles of ``classes[i]``; ``overrides[child][parent_code]`` is the child's
    distribution when its parent takes that level; ``panels`` are (assessment rate, finding
    ids assessed together), covering every finding once.
    """

    schema: Schema
    source: str
    sha256: str
    title: str
    references: Mapping[str, str]
    decisions: tuple[Mapping[str, str], ...]
    band_edges: tuple[float, ...]
    background: Mapping[str, Spec]
    constraints: Mapping[str, Mapping[str, Any]]
    children: Mapping[str, tuple[str, ...]]
    overrides: Mapping[str, Mapping[int, Spec]]
    classes: tuple[EtiologyClass, ...]
    profiles: tuple[tuple[ProfileSpec, ...], ...]
    panels: tuple[tuple[float, tuple[str, ...]], ...]
    document: Mapping[str, Any]
    floors: Floors = Floors()
    workups: tuple[Workup, ...] = ()


def _parse_floors(raw, problems: Problems) -> Floors:
    if raw is None:
        return Floors()
    if not problems.need(isinstance(raw, Mapping), "floors", "must be a table { probability, age, src }"):
        return Floors()
    check_keys(raw, {"probability", "age", "src"}, "floors", problems)
    check_src(raw, "floors", problems)
    values = {}
    for key in ("probability", "age"):
        value = raw.get(key, 0.0)
        problems.need(is_number(value) and 0.0 <= value <= 0.05, f"floors.{key}", f"must be between 0 and 0.05 (got {value!r})")
        values[key] = float(value) if is_number(value) else 0.0
    return Floors(**values)


def parse_document(document: Mapping, schema: Schema, *, source: str = "knowledge", sha256: str = "") -> ParsedKnowledge:
    """Validate a knowledge document (parsed TOML) against ``schema``.

    Raises
    ------
    KnowledgeError
        Listing every problem found, each naming the entry and the field.
    """
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise KnowledgeError(f"{source}: format_version must be {FORMAT_VERSION} (got {version!r})")
    for fid in (AGE, SEX):
        if fid not in schema:
            raise KnowledgeError(f"{source}: the schema must define the finding {fid!r}")
    edges = _band_edges(document, source)
    problems = Problems()
    known = {"format_version", "title", "demographics", "references", "decisions", "assessment", "floors",
             "constraints", "dependencies", "background", "classes"}
    for key in document:  # a misspelt table ([constraint.pregnancy]) must not vanish without a word
        problems.need(key in known, key, f"unknown top-level table (expected one of {', '.join(sorted(known))})")
    _check_demographics(document, schema, edges, problems)
    _check_references_and_decisions(document, problems)
    background = _parse_background(document, schema, edges, problems)
    constraints = _parse_constraints(document.get("constraints", {}), schema, edges, problems)
    children, overrides = _parse_dependencies(document.get("dependencies", {}), schema, edges, constraints, problems)
    classes, profiles = _parse_classes(document.get("classes", {}), schema, edges, problems)
    panels = parse_panels(document.get("assessment", {}), schema, problems)
    floors = _parse_floors(document.get("floors"), problems)
    workups = parse_workups(document.get("assessment", {}).get("workup"), problems)
    if problems:
        raise KnowledgeError(f"{source}: " + "; ".join(problems))
    return ParsedKnowledge(
        schema=schema, source=source, sha256=sha256, title=document.get("title", ""),
        references=dict(document.get("references", {})), decisions=tuple(document.get("decisions", [])),
        band_edges=tuple(float(e) for e in edges), background=background, constraints=constraints,
        children=children, overrides=overrides, classes=tuple(classes), profiles=tuple(profiles), panels=panels,
        document=document, floors=floors, workups=workups)


def _band_edges(document: Mapping, source: str) -> list:
    edges = document.get("demographics", {}).get("age_band_edges")
    if not (isinstance(edges, list) and len(edges) >= 2 and all(is_number(e) and float(e).is_integer() for e in edges)
            and all(a < b for a, b in zip(edges, edges[1:]))):
        raise KnowledgeError(f"{source}: demographics.age_band_edges must be increasing whole years")
    return edges


def _check_demographics(document: Mapping, schema: Schema, edges: list, problems: Problems) -> None:
    check_src(document.get("demographics", {}), "demographics", problems)
    age_hard = schema[AGE].hard
    problems.need(edges[0] <= age_hard[0] and edges[-1] > age_hard[1], "demographics.age_band_edges",
                  f"must cover the schema's age range {age_hard[0]:g}–{age_hard[1]:g}")


def _check_references_and_decisions(document: Mapping, problems: Problems) -> None:
    references = document.get("references", {})
    problems.need(isinstance(references, Mapping) and set(references) == {str(n) for n in SEED_REFERENCES},
                  "references", "must name the seed's references 1-9")
    for i, decision in enumerate(document.get("decisions", [])):
        w = f"decisions[{i}]"
        check_keys(decision, {"cause", "decision", "into", "reason"}, w, problems)
        problems.need(decision.get("decision") in ("merged", "demoted", "sub-profile"), f"{w}.decision",
                      "must be merged, demoted or sub-profile")
        for key in ("cause", "into", "reason"):
            problems.need(isinstance(decision.get(key), str) and decision[key], f"{w}.{key}", "a non-empty text is required")
        if isinstance(decision.get("reason"), str):
            check_src({"src": decision["reason"]}, w + ".reason", problems)


def _parse_findings(raw, where: str, schema: Schema, edges: list, problems: Problems) -> dict[str, Spec]:
    """A table of finding id -> distribution (age and sex are the class's own fields)."""
    specs: dict[str, Spec] = {}
    if raw is None or not problems.need(isinstance(raw, Mapping), where, "must be a table of finding = distribution"):
        return specs
    for fid, spec_raw in raw.items():
        w = f"{where}.{fid}"
        if not problems.need(fid in schema, w, "unknown finding (not in contract/findings.toml)"):
            continue
        if not problems.need(fid not in (AGE, SEX), w, "age and sex come from the class's 'age' and 'female' fields"):
            continue
        spec = parse_spec(spec_raw, w, schema[fid], edges, problems)
        if spec is not None:
            specs[fid] = spec
    return specs


def _parse_background(document: Mapping, schema: Schema, edges: list, problems: Problems) -> dict[str, Spec]:
    background = _parse_findings(document.get("background"), "background", schema, edges, problems)
    declared = document.get("background") if isinstance(document.get("background"), Mapping) else {}
    for finding in schema:
        if finding.id not in (AGE, SEX):  # an invalid entry is reported above, not as missing
            problems.need(finding.id in declared, f"background.{finding.id}", "missing: every finding needs a background distribution")
    return background


def _parse_constraints(raw_constraints: Mapping, schema: Schema, edges: list, problems: Problems) -> dict[str, Mapping]:
    constraints = {}
    for fid, raw in raw_constraints.items():
        w = f"constraints.{fid}"
        if not problems.need(fid in schema and not schema[fid].is_numeric, w, "constraints apply to binary or categorical findings of the schema"):
            continue
        check_keys(raw, {"sex", "age", "otherwise", "src"}, w, problems)
        check_src(raw, w, problems)
        sex = raw.get("sex")
        problems.need(sex is None or sex in schema[SEX].level_ids, f"{w}.sex", f"must be one of {', '.join(schema[SEX].level_ids)}")
        age = raw.get("age", [edges[0], edges[-1]])
        problems.need(isinstance(age, list) and len(age) == 2 and all(a in edges for a in age) and age[0] < age[1],
                      f"{w}.age", f"must be [from, to) with both age band edges {edges}")
        problems.need(raw.get("otherwise") in schema[fid].level_ids, f"{w}.otherwise", f"must be a level of {fid}")
        constraints[fid] = raw
    return constraints


def _parse_dependencies(raw_dependencies: Mapping, schema: Schema, edges: list, constraints: Mapping, problems: Problems):
    """Parent -> children, and each child's distribution per parent level (one level deep)."""
    children: dict[str, tuple[str, ...]] = {}
    overrides: dict[str, dict[int, Spec]] = {}
    for parent, raw in raw_dependencies.items():
        w = f"dependencies.{parent}"
        if not problems.need(parent in schema and not schema[parent].is_numeric and parent not in (AGE, SEX), w,
                             "a parent must be a binary or categorical finding other than age and sex"):
            continue
        check_keys(raw, {"when", "src"}, w, problems)
        check_src(raw, w, problems)
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
    return children, overrides


def _parse_age(raw, where: str, edges: list, problems: Problems):
    if not problems.need(isinstance(raw, Mapping), where, "must be a table { mean, sd, src } with optional min, max"):
        return None
    check_keys(raw, {"mean", "sd", "min", "max", "src"}, where, problems)
    check_src(raw, where, problems)
    mean, sd = raw.get("mean"), raw.get("sd")
    low, high = raw.get("min", edges[0]), raw.get("max", edges[-1])
    ok = problems.need(is_number(mean) and edges[0] <= mean < edges[-1], f"{where}.mean", f"must be an age within {edges[0]}–{edges[-1]}")
    ok &= problems.need(is_number(sd) and sd > 0, f"{where}.sd", f"must be a positive number (got {sd!r})")
    ok &= problems.need(low in edges and high in edges and low < high, f"{where}.min", f"min and max must be age band edges {edges}, min < max")
    return (float(mean), float(sd), float(low), float(high)) if ok else None


def _parse_classes(raw_classes: Mapping, schema: Schema, edges: list, problems: Problems):
    problems.need(isinstance(raw_classes, Mapping) and len(raw_classes) >= 2, "classes", "at least two classes are required")
    classes, profiles = [], []
    for cid, raw in raw_classes.items():
        parsed = _parse_class(cid, raw, schema, edges, problems)
        if parsed is not None:
            classes.append(parsed[0])
            profiles.append(parsed[1])
    return classes, profiles


def _parse_class(cid: str, raw: Mapping, schema: Schema, edges: list, problems: Problems):
    w = f"classes.{cid}"
    problems.need(cid.isidentifier() and cid == cid.lower(), w, "class id must be snake_case")
    check_keys(raw, _CLASS_KEYS, w, problems)
    for key in ("name", "summary"):
        problems.need(isinstance(raw.get(key), str) and raw[key].strip(), f"{w}.{key}", "a non-empty text is required")
    icd10 = raw.get("icd10")
    problems.need(icd10 is None or (isinstance(icd10, str) and _ICD10.match(icd10)), f"{w}.icd10", f"not an ICD-10-CM code: {icd10!r}")
    prior = raw.get("prior", {})
    check_src(prior, f"{w}.prior", problems)
    problems.need(is_number(prior.get("value")) and prior.get("value") > 0, f"{w}.prior.value", "must be a positive weight")
    age = _parse_age(raw.get("age"), f"{w}.age", edges, problems)
    female_raw = raw.get("female", {})
    check_src(female_raw, f"{w}.female", problems)
    female = probability(female_raw.get("p"), f"{w}.female.p", problems)
    findings = _parse_findings(raw.get("findings"), f"{w}.findings", schema, edges, problems)
    single = {"main": {"name": raw.get("name", cid), "weight": {"value": 1.0, "src": "assumption: single profile"}}}
    profiles = [_parse_profile(pid, praw, f"{w}.profiles.{pid}", age, female, findings, schema, edges, problems)
                for pid, praw in (raw.get("profiles") or single).items()]
    total = sum(p.weight for p in profiles)
    problems.need(abs(total - 1.0) < TOL, f"{w}.profiles", f"profile weights must sum to 1 (they sum to {total:.6g})")
    if not (isinstance(raw.get("name"), str) and is_number(prior.get("value"))):
        return None
    etiology = EtiologyClass(
        id=cid, name=raw["name"], icd10=icd10, icd10_note=raw.get("icd10_note"), prior=float(prior["value"]),
        prior_src=prior.get("src", ""), summary=raw.get("summary", ""),
        profiles=tuple(Profile(p.id, p.name, p.weight, p.icd10) for p in profiles))
    return etiology, tuple(profiles)


def _parse_profile(pid: str, raw: Mapping, where: str, class_age, class_female, class_findings, schema, edges,
                   problems: Problems) -> ProfileSpec:
    check_keys(raw, _PROFILE_KEYS, where, problems)
    weight = raw.get("weight", {})
    check_src(weight, f"{where}.weight", problems)
    value = probability(weight.get("value"), f"{where}.weight.value", problems)
    age = _parse_age(raw["age"], f"{where}.age", edges, problems) if "age" in raw else class_age
    female = class_female
    if "female" in raw:
        check_src(raw["female"], f"{where}.female", problems)
        female = probability(raw["female"].get("p"), f"{where}.female.p", problems)
    findings = dict(class_findings)
    findings.update(_parse_findings(raw.get("findings"), f"{where}.findings", schema, edges, problems))
    return ProfileSpec(pid, raw.get("name", pid), value or 0.0, raw.get("icd10"), age, female, findings)
