"""An assessment as terminal text (``crampdx predict``)."""

from __future__ import annotations

from crampdx.model.assessment import Assessment
from crampdx.model.results import Explanation
from crampdx.render.format import percent

__all__ = ["assessment_text", "explanation_heading"]


def explanation_heading(explanation: Explanation) -> str:
    """The line above an explanation.

    The values are the model's calibrated scores (logits / T), not the log-odds of the
    cause: only the softmax over every cause's score is a probability.
    """
    return (f"Why {explanation.cause_name} (score; average case {explanation.base_value:+.2f} → this case "
            f"{explanation.value:+.2f}; probabilities are the softmax of the causes' scores)")


def assessment_text(assessment: Assessment) -> str:
    """Red flags, the differential, the atypical note, explanations, what to ask next, the
    disclaimer: one assessment as plain text for a terminal."""
    a = assessment
    lines = [f"[{flag.severity.upper()}] {flag.title}: {flag.message}" for flag in a.red_flags]
    if a.red_flags:
        lines.append("")
    if a.not_used:
        lines += ["Not used (invalid): " + "; ".join(f"{field}: {message}" for field, message in a.not_used.items()), ""]
    lines.append("Differential (probability, ICD-10):")
    lines += [f"  {rank:2d}. {cause.name:<52} {percent(cause.probability):>6}  {cause.icd10 or ''}"
              for rank, cause in enumerate(a.shown_causes, 1)]
    if a.atypicality is not None and a.atypicality.is_atypical:
        lines += ["", f"Note: {a.atypicality.message}"]
    for ex in a.explanations:
        lines += ["", f"{explanation_heading(ex)}:"]
        lines += [f"  {c.contribution:+.2f}  {c.text}" for c in ex.contributions]
        lines.append(f"  {ex.not_assessed:+.2f}  {ex.n_not_assessed} findings not assessed")
    if a.next_findings:
        lines += ["", "Ask or examine next:"]
        lines += [f"  - {n.label} ({n.section}): expected gain {n.expected_information_gain:.2f} bits, "
                  f"{n.chance_top_cause_changes:.0%} chance the top cause changes" for n in a.next_findings]
    lines += ["", a.disclaimer]
    return "\n".join(lines)
