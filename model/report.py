"""One case's full report — differential, red flags, explanation, what to ask next — as a
JSON-ready dict and as printable Markdown. The CLI and the dashboard both use it."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Mapping

from model.case import Case
from model.red_flags import red_flags

__all__ = ["AGREEMENT_METRICS", "DISCLAIMER", "case_report", "findings_from_json", "markdown_report",
           "model_versus_posterior", "percent"]

DISCLAIMER = (
    "crampdx is decision support for clinicians, trained on synthetic cases generated from one "
    "review article; it has not been validated on patients and must not replace clinical judgement."
)
REPORT_FORMAT_VERSION = 1


def percent(probability: float) -> str:
    """A probability as a percentage with one decimal that never shows 0 % or 100 %: the
    model is never certain, so ">99.9 %" and "<0.1 %" say what the rounding would hide."""
    if probability >= 0.9995:
        return ">99.9%"
    if probability < 0.0005:
        return "<0.1%"
    return f"{probability:.1%}"


def case_report(diagnoser, case: Case, *, top: int = 10, explain: str | None = None, next_findings: int = 5,
                not_used: Mapping[str, str] | None = None) -> dict:
    """Everything crampdx says about one case.

    Parameters
    ----------
    diagnoser : Diagnoser
    case : Case
        A validated case.
    top : int
        How many causes of the differential to include.
    explain : str, optional
        Cause id to explain; ``"top"`` explains the most probable cause.
    next_findings : int
        How many next-best findings to include.
    not_used : mapping, optional
        Entries that were made but failed validation (field -> message): reported so that
        nothing entered disappears silently from the record.
    """
    causes = diagnoser.rank(case)
    report = {
        "format_version": REPORT_FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "disclaimer": DISCLAIMER,
        "model": {"created": diagnoser.manifest_.get("created"), "model_sha256": diagnoser.manifest_.get("model_sha256")},
        "findings": case.to_dict(),
        "findings_text": {fid: case.describe(fid) for fid in case},
        "entries_not_used": dict(not_used or {}),
        "differential": [c.to_dict() for c in causes[:top]],
        "red_flags": [asdict(flag) for flag in red_flags(case, [c.id for c in causes])],  # ranked once, above
        "atypical": diagnoser.atypical(case).to_dict(),
        "next_best_findings": [n.to_dict() for n in diagnoser.next_best_findings(case, k=next_findings)] if next_findings else [],
    }
    if explain:
        cause_id = causes[0].id if explain == "top" else explain
        report["explanation"] = diagnoser.explain(case, cause_id).to_dict()
    return report


def markdown_report(report: dict) -> str:
    """A printable Markdown rendering of :func:`case_report`'s output."""
    lines = ["# crampdx — leg cramps differential", "", f"> **{report['disclaimer']}**", "",
             f"Report created {report['created']}.", ""]
    if report["red_flags"]:
        lines += ["## Red flags", ""]
        lines += [f"- **{f['severity'].upper()} — {f['title']}.** {f['message']}"
                  + (f" *Because: {', '.join(f['because'])}.*" if f.get("because") else "") for f in report["red_flags"]]
        lines.append("")
    lines += ["## Findings entered", ""]
    lines += [f"- {text}" for text in report["findings_text"].values()] or ["- none"]
    if report.get("entries_not_used"):
        lines += ["", "## Entered but not used (invalid; correct them and assess again)", ""]
        lines += [f"- {field}: {message}" for field, message in report["entries_not_used"].items()]
    lines += ["", "## Differential", "", "| # | cause | ICD-10 | probability |", "|---|---|---|---|"]
    lines += [f"| {i} | {c['name']} | {c['icd10'] or '—'} | {percent(c['probability'])} |" for i, c in enumerate(report["differential"], 1)]
    if report["atypical"]["is_atypical"]:
        lines += ["", f"> {report['atypical']['message']}"]
    if "explanation" in report:
        ex = report["explanation"]
        lines += ["", f"## Why {ex['cause_name']} ({percent(ex['probability'])})", "",
                  "Contributions to the cause's score (SHAP); positive values argue for it. The probabilities are the "
                  "softmax of the causes' scores.", "",
                  "| finding | contribution |", "|---|---|", f"| average synthetic case (base score) | {ex['base_value']:+.2f} |"]
        lines += [f"| {c['text']} | {c['contribution']:+.2f} |" for c in ex["contributions"]]
        lines += [f"| {ex['n_not_assessed']} findings not assessed | {ex['not_assessed']:+.2f} |",
                  f"| **score** | **{ex['value']:+.2f}** |"]
    if report["next_best_findings"]:
        lines += ["", "## Ask or examine next", ""]
        lines += [f"- {n['label']} ({n['section']}): expected information gain {n['expected_information_gain']:.2f} bits; "
                  f"{n['chance_top_cause_changes']:.0%} chance the top cause changes" for n in report["next_best_findings"]]
    lines += ["", "---", report["disclaimer"], ""]
    return "\n".join(lines)


def findings_from_json(data: str | bytes) -> dict:
    """The findings of a case file: a JSON object of finding -> value, or a report exported
    by crampdx (its ``findings``). Values are validated later, by ``validate_case``.

    Raises
    ------
    ValueError
        One sentence: not UTF-8 JSON, or not an object of findings.
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data  # a byte-order mark is harmless
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if isinstance(document, dict) and isinstance(document.get("findings"), dict):
        document = document["findings"]
    if not isinstance(document, dict) or not document:
        raise ValueError("expected a JSON object of finding -> value, or a report exported by crampdx")
    return document


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"{', '.join(map(repr, twice))} given twice; keep one value for each finding")
    return dict(pairs)


PAIRED_METRICS = (("top-1 accuracy", "top1_accuracy", "posterior_top1_accuracy"),
                  ("top-3 accuracy", "top3_accuracy", "posterior_top3_accuracy"),
                  ("log loss", "log_loss", "posterior_log_loss"))
AGREEMENT_METRICS = (("top-1 agreement with the exact posterior", "top1_agreement_with_posterior", "{:.1%}"),
                     ("top-1 accuracy, model / exact posterior", "top1_ratio_to_posterior", "{:.3f}"),
                     ("mean KL(exact posterior ‖ model)", "mean_kl_posterior_to_model", "{:.3f} nats"))


def model_versus_posterior(manifest: Mapping) -> "pd.DataFrame | None":
    """The artifact's evaluation figures side by side: the model against the exact posterior
    (columns ``figure``, ``model``, ``exact posterior``), or None when the manifest has none."""
    import pandas as pd

    metrics = manifest.get("metrics") or {}
    model, exact = metrics.get("model") or {}, metrics.get("posterior") or {}
    rows = [(name, model[m], exact[p]) for name, m, p in PAIRED_METRICS if m in model and p in exact]
    return pd.DataFrame(rows, columns=["figure", "model", "exact posterior"]) if rows else None
