"""Validators of single knowledge-base entries: provenance, probabilities and distributions.

Each validator appends ``<where>: <message>`` to a :class:`Problems` list naming the entry and
the field, and returns the parsed value (or None), so that one pass reports every problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from crampdx.contract.schema import Finding

__all__ = ["SEED_REFERENCES", "Problems", "Spec", "check_keys", "check_src", "is_number", "parse_spec", "probability"]

SEED_REFERENCES = range(1, 10)  # the seed cites references 1-9
_SRC_SEED = re.compile(r"seed:\s*(\d+(?:\s*,\s*\d+)*)")
TOL = 1e-6


class Problems(list):
    """Problems found so far, each ``<where>: <message>``."""

    def need(self, condition: bool, where: str, message: str) -> bool:
        if not condition:
            self.append(f"{where}: {message}")
        return bool(condition)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_src(raw: Mapping, where: str, problems: Problems) -> None:
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


def check_keys(raw: Mapping, allowed: set[str], where: str, problems: Problems) -> None:
    for key in raw:
        problems.need(key in allowed, f"{where}.{key}", f"unknown field (expected one of {', '.join(sorted(allowed))})")


def probability(value, where: str, problems: Problems) -> float | None:
    if problems.need(is_number(value) and 0.0 <= value <= 1.0, where, f"must be a probability between 0 and 1 (got {value!r})"):
        return float(value)
    return None


# Parameter parsers, one per finding kind. Each returns the parameter in the form the
# compiler uses: a probability vector over levels, or (loc, scale) in t-space.

def _binary_param(value, where: str, finding: Finding, problems: Problems):
    p = probability(value, where, problems)
    return None if p is None else np.array([1.0 - p, p])


def _levels_param(value, where: str, finding: Finding, problems: Problems):
    if not problems.need(isinstance(value, Mapping) and value, where, "must be a table of level = probability"):
        return None
    vector = np.zeros(len(finding.levels))
    ok = True
    for level, p in value.items():
        if not problems.need(level in finding.level_ids, f"{where}.{level}",
                             f"unknown level of {finding.id} (expected one of {', '.join(finding.level_ids)})"):
            ok = False
            continue
        p = probability(p, f"{where}.{level}", problems)
        ok = ok and p is not None
        if p is not None:
            vector[finding.code(level)] = p
    if ok and not problems.need(abs(vector.sum() - 1.0) < TOL, where, f"level probabilities must sum to 1 (they sum to {vector.sum():.6g})"):
        return None
    return vector if ok else None


_NUMERIC_KEYS = {"normal": ("mean", "sd"), "lognormal": ("median", "log_sd")}


def _numeric_param(value, where: str, finding: Finding, problems: Problems, dist: str):
    if not problems.need(isinstance(value, Mapping), where, "must be a table of distribution parameters"):
        return None
    location_key, scale_key = _NUMERIC_KEYS[dist]
    location, scale = value.get(location_key), value.get(scale_key)
    ok = problems.need(is_number(location), f"{where}.{location_key}", f"a number is required for a {dist} distribution (got {location!r})")
    ok &= problems.need(is_number(scale) and scale > 0, f"{where}.{scale_key}", f"must be a positive number (got {scale!r})")
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
class Spec:
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


def parse_spec(raw, where: str, finding: Finding, edges: list[float], problems: Problems) -> Spec | None:
    if not problems.need(isinstance(raw, Mapping), where, "must be a table (e.g. { p = 0.3, src = \"seed:4\" })"):
        return None
    before = len(problems)
    check_src(raw, where, problems)
    dist = None
    if finding.kind == "binary":
        check_keys(raw, {"p", "by_age", "src"}, where, problems)
        parse: Callable = _binary_param
        base = parse(raw.get("p"), f"{where}.p", finding, problems)
    elif finding.kind == "categorical":
        check_keys(raw, {"levels", "by_age", "src"}, where, problems)
        parse = _levels_param
        base = parse(raw.get("levels"), f"{where}.levels", finding, problems)
    else:
        dist = raw.get("dist")
        if not problems.need(dist in _NUMERIC_KEYS, f"{where}.dist", f"must be one of {', '.join(_NUMERIC_KEYS)} (got {dist!r})"):
            return None
        check_keys(raw, {"dist", *_NUMERIC_KEYS[dist], "by_age", "src"}, where, problems)

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
            problems.need(is_number(age) and age > previous, w, "ages must increase")
            previous = age if is_number(age) else previous
            by_age.append((age, parse(value, w, finding, problems)))
    if len(problems) > before:
        return None
    return Spec(base=base, by_age=tuple(by_age), dist=dist)
