"""The knowledge base summarised for a reader: its classes, and each class's key findings
with their sources.

Used by ``crampdx knowledge`` and the dashboard's knowledge browser. "Key" means distinctive: a finding's entry in a
class is ranked by how far it moves away from the background rate that every presentation of
leg cramps shares (the KL divergence of the class's distribution from the background's).
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd

from crampdx.contract.schema import Finding, Schema
from crampdx.contract.schema_file import load_schema
from crampdx.synthetic.kb import KnowledgeBase

__all__ = ["cited_references", "describe_distribution", "key_findings", "knowledge_summary"]

_SEED_CITATION = re.compile(r"seed:(\d+(?:,\d+)*)")


def key_findings(kb: KnowledgeBase, class_id: str, schema: Schema | None = None) -> pd.DataFrame:
    """The class's own entries in the knowledge base, most distinctive first.

    Parameters
    ----------
    kb : KnowledgeBase
    class_id : str
    schema : Schema, optional
        Defaults to the shipped finding schema.

    Returns
    -------
    pandas.DataFrame
        Columns ``finding``, ``in this class``, ``all presentations`` (the background, before
        any age effect) and ``source`` (the entry's provenance). A sub-profile's entries are
        named after it and weighted by its share of the class.
    """
    schema = schema or load_schema()
    document = kb.document
    entry = document["classes"][class_id]
    background = document.get("background", {})
    profiles = entry.get("profiles", {})
    total = sum(float(p.get("weight", {}).get("value", 1.0)) for p in profiles.values()) or 1.0
    sources = [(None, 1.0, entry.get("findings", {}))]
    sources += [(p.get("name", pid), float(p.get("weight", {}).get("value", 1.0)) / total, p.get("findings", {}))
                for pid, p in profiles.items()]
    rows = []
    for profile, share, findings in sources:
        for fid, spec in findings.items():
            finding = schema[fid]
            rows.append({
                "finding": finding.label + (f" — {profile}" if profile else ""),
                "in this class": describe_distribution(finding, spec),
                "all presentations": describe_distribution(finding, background.get(fid)),
                "source": spec.get("src", ""),
                "weight": share * _distinctiveness(finding, spec, background.get(fid)),
            })
    frame = pd.DataFrame(rows, columns=["finding", "in this class", "all presentations", "source", "weight"])
    return frame.sort_values("weight", ascending=False, kind="stable").drop(columns="weight").reset_index(drop=True)


def cited_references(kb: KnowledgeBase, class_id: str) -> list[str]:
    """The seed references that the class's entries cite, in order, as ``[N] reference``."""
    text = json.dumps(kb.document["classes"][class_id])
    numbers = {int(n) for group in _SEED_CITATION.findall(text) for n in group.split(",")}
    return [f"[{n}] {kb.references.get(str(n), '')}" for n in sorted(numbers)]


def describe_distribution(finding: Finding, spec: dict | None) -> str:
    """A knowledge-base distribution in words (its base value, before any age effect)."""
    if not spec:
        return "—"
    by_age = " (varies with age)" if spec.get("by_age") else ""
    if finding.kind == "binary":
        return _percent(spec["p"]) + by_age
    if finding.is_numeric:
        if "median" in spec:
            return f"median {spec['median']:g} {finding.unit}{by_age}"
        return f"mean {spec['mean']:g} {finding.unit} (sd {spec['sd']:g}){by_age}"
    labels = {level.id: level.label for level in finding.levels}
    top = sorted(spec["levels"].items(), key=lambda item: -item[1])[:2]
    return ", ".join(f"{labels.get(level, level)} {_percent(p)}" for level, p in top if p > 0) + by_age


def _percent(p: float) -> str:
    return f"{p:.1%}" if 0 < p < 0.01 else f"{p:.0%}"


def _normal(spec: dict, log_scale: bool) -> tuple[float, float]:
    """A numeric distribution as (mu, sigma): of the log when both are lognormal, else linear."""
    if "median" in spec:
        mu, sigma = math.log(float(spec["median"])), float(spec["log_sd"])
        if log_scale:
            return mu, sigma
        mean = math.exp(mu + sigma ** 2 / 2)
        return mean, mean * math.sqrt(math.expm1(sigma ** 2))
    return float(spec["mean"]), float(spec["sd"])


def _distinctiveness(finding: Finding, spec: dict, background: dict | None) -> float:
    """KL(class || background) of one finding in nats (Gaussian approximation for numbers)."""
    if not background:
        return 1.0
    eps = 1e-3
    if finding.is_numeric:
        log_scale = "median" in spec and "median" in background
        (m1, s1), (m2, s2) = _normal(spec, log_scale), _normal(background, log_scale)
        return math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    if finding.kind == "binary":
        p, q = spec["p"], background["p"]
        mine, usual = {"present": p, "absent": 1 - p}, {"present": q, "absent": 1 - q}
    else:
        mine, usual = spec["levels"], background.get("levels", {})
    return sum(p * math.log((p + eps) / (usual.get(level, 0.0) + eps)) for level, p in mine.items() if p > 0)


def knowledge_summary(kb: KnowledgeBase) -> dict:
    """The knowledge base's classes with prior, ICD-10 code and provenance (JSON-ready).

    Examples
    --------
    >>> from crampdx.synthetic import load_knowledge
    >>> summary = knowledge_summary(load_knowledge())
    >>> summary["classes"][0]["id"], round(sum(c["prior"] for c in summary["classes"]), 3)
    ('idiopathic_nocturnal', 1.0)
    """
    return {
        "title": kb.title,
        "source": kb.source,
        "sha256": kb.sha256,
        "classes": [
            {
                "id": c.id,
                "name": c.name,
                "icd10": c.icd10,
                "icd10_note": c.icd10_note,
                "prior": round(c.prior, 6),
                "prior_src": c.prior_src,
                "summary": c.summary,
                "profiles": [{"id": p.id, "name": p.name, "weight": p.weight} for p in c.profiles if len(c.profiles) > 1],
            }
            for c in kb.classes
        ],
        "decisions": [dict(d) for d in kb.decisions],
        "references": dict(kb.references),
    }
