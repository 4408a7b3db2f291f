"""An assessment as a printable Markdown report (the dashboard's export)."""

from __future__ import annotations

from crampdx.model.assessment import Assessment
from crampdx.render.format import literal_markdown, percent

__all__ = ["assessment_markdown"]


def assessment_markdown(assessment: Assessment) -> str:
    """A printable Markdown rendering of one :class:`~crampdx.model.Assessment`.

    Red flags first, then the findings entered (and entries not used), the differential,
    the atypical-case note, each explanation asked for, what to ask next, and the disclaimer
    at the top and the bottom.
    """
    a = assessment
    lines = ["# crampdx — leg cramps differential", "", f"> **{a.disclaimer}**", "",
             f"Assessment created {a.created}.", ""]
    if a.red_flags:
        lines += ["## Red flags", ""]
        lines += [f"- **{f.severity.upper()} — {f.title}.** {f.message}"
                  + (f" *Because: {', '.join(f.because)}.*" if f.because else "") for f in a.red_flags]
        lines.append("")
    lines += ["## Findings entered", ""]
    lines += [f"- {a.case.describe(fid)}" for fid in a.case] or ["- none"]
    if a.not_used:
        lines += ["", "## Entered but not used (invalid; correct them and assess again)", ""]
        lines += [f"- {literal_markdown(field)}: {literal_markdown(message)}" for field, message in a.not_used.items()]
    lines += ["", "## Differential", "", "| # | cause | ICD-10 | probability |", "|---|---|---|---|"]
    lines += [f"| {i} | {c.name} | {c.icd10 or '—'} | {percent(c.probability)} |" for i, c in enumerate(a.shown_causes, 1)]
    if a.atypicality is not None and a.atypicality.is_atypical:
        lines += ["", f"> {a.atypicality.message}"]
    for ex in a.explanations:
        lines += ["", f"## Why {ex.cause_name} ({percent(ex.probability)})", "",
                  "Contributions to the cause's score (SHAP); positive values argue for it. The probabilities are the "
                  "softmax of the causes' scores.", "",
                  "| finding | contribution |", "|---|---|", f"| average synthetic case (base score) | {ex.base_value:+.2f} |"]
        lines += [f"| {c.text} | {c.contribution:+.2f} |" for c in ex.contributions]
        lines += [f"| {ex.n_not_assessed} findings not assessed | {ex.not_assessed:+.2f} |",
                  f"| **score** | **{ex.value:+.2f}** |"]
    if a.next_findings:
        lines += ["", "## Ask or examine next", ""]
        lines += [f"- {n.label} ({n.section}): expected information gain {n.expected_information_gain:.2f} bits; "
                  f"{n.chance_top_cause_changes:.0%} chance the top cause changes" for n in a.next_findings]
    lines += ["", "---", a.disclaimer, ""]
    return "\n".join(lines)
