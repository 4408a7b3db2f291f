"""The assessment model of the knowledge base: which findings a case's workup assessed.

Never dependent on the etiology, so that a finding not assessed is never evidence: each case
draws a workup (brief or full), the panels of findings assessed together are kept at their
declared rates, and a brief workup keeps only a random few of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from crampdx.contract.schema import Schema
from crampdx.synthetic.entries import TOL, Problems, check_keys, check_src, probability

__all__ = ["Workup", "parse_panels", "parse_workups"]


@dataclass(frozen=True)
class Workup:
    """One kind of workup, drawn per case whatever its etiology: with probability ``weight``
    a case is worked up this way. A ``brief`` workup keeps between ``findings[0]`` and
    ``findings[1]`` of the findings the panels assessed, chosen at random (``None``: all)."""

    name: str
    weight: float
    findings: tuple[int, int] | None


def parse_workups(raw, problems: Problems) -> tuple[Workup, ...]:
    """``[assessment.workup.<name>] = { weight, findings = [min, max]?, src }``, weights summing to 1."""
    if raw is None:
        return (Workup("full", 1.0, None),)
    if not problems.need(isinstance(raw, Mapping) and raw, "assessment.workup", "must be a table of workups"):
        return ()
    workups = []
    for name, spec in raw.items():
        w = f"assessment.workup.{name}"
        if not problems.need(isinstance(spec, Mapping), w, "must be a table { weight, findings, src }"):
            continue
        check_keys(spec, {"weight", "findings", "src"}, w, problems)
        check_src(spec, w, problems)
        weight = probability(spec.get("weight"), f"{w}.weight", problems)
        kept = spec.get("findings")
        ok = kept is None or (isinstance(kept, list) and len(kept) == 2 and all(isinstance(k, int) for k in kept)
                              and 1 <= kept[0] <= kept[1])
        problems.need(ok, f"{w}.findings", "must be [fewest, most] whole numbers of findings kept, 1 <= fewest <= most")
        if weight is not None and ok:
            workups.append(Workup(name, weight, tuple(kept) if kept else None))
    total = sum(w.weight for w in workups)
    problems.need(abs(total - 1.0) < TOL, "assessment.workup", f"the weights must sum to 1 (they sum to {total:.6g})")
    return tuple(workups)


def parse_panels(raw: Mapping, schema: Schema, problems: Problems) -> tuple[tuple[float, tuple[str, ...]], ...]:
    """Panels of findings assessed together; every finding is in exactly one panel."""
    rate_of = {}
    for section in schema.sections:
        spec = raw.get("sections", {}).get(section, {})
        check_src(spec, f"assessment.sections.{section}", problems)
        rate_of[section] = probability(spec.get("rate"), f"assessment.sections.{section}.rate", problems)
    panels, seen = [], set()
    for name, spec in raw.get("panels", {}).items():
        w = f"assessment.panels.{name}"
        check_keys(spec, {"findings", "rate", "src"}, w, problems)
        check_src(spec, w, problems)
        rate = probability(spec.get("rate"), f"{w}.rate", problems)
        members = spec.get("findings", [])
        for fid in members:
            problems.need(fid in schema, f"{w}.findings", f"unknown finding {fid!r}")
            problems.need(fid not in seen, f"{w}.findings", f"{fid!r} is already in another panel")
            seen.add(fid)
        if rate is not None and all(f in schema for f in members):
            panels.append((rate, tuple(members)))
    for finding in schema:
        if finding.id not in seen and rate_of.get(finding.section) is not None:
            panels.append((rate_of[finding.section], (finding.id,)))
    return tuple(panels)
