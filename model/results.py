"""The parts of an assessment: causes, explanations, next findings, atypicality.

Plain frozen dataclasses with ``to_dict()``; :class:`crampdx.model.assessment.Assessment`
bundles them for one case, and every front end renders that one object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Atypicality", "Cause", "Contribution", "Explanation", "NextFinding", "WaterfallStep"]


def _fields(record) -> dict:
    """A record's fields as a dict, one level deep (``dataclasses.asdict`` deep-copies every
    nested value, a large part of rendering an assessment as JSON)."""
    return dict(vars(record))


@dataclass(frozen=True)
class Cause:
    """One etiology class in the ranked differential."""

    id: str
    name: str
    icd10: str | None
    probability: float
    score: float  # calibrated log-odds; softmax over causes gives the probabilities

    def to_dict(self) -> dict:
        return _fields(self)


@dataclass(frozen=True)
class Contribution:
    """How much one entered finding moved a cause's score (log-odds, SHAP)."""

    finding_id: str
    label: str
    section: str
    text: str  # the entered value in clinical words, e.g. "Potassium 2.9 mmol/L (low)"
    contribution: float

    def to_dict(self) -> dict:
        return _fields(self)


@dataclass(frozen=True)
class Explanation:
    """Why a cause has its score, finding by finding.

    ``base_value + sum(c.contribution for c in contributions) + not_assessed == value``
    (exactly, up to floating point), and for two causes i and j of one case
    ``p_i / p_j == exp(value_i - value_j)``.

    Attributes
    ----------
    value : float
        The cause's calibrated log-odds score.
    base_value : float
        The score of an average training case (SHAP's expected value), before any finding.
    contributions : tuple of Contribution
        One per entered finding, largest effect first.
    not_assessed : float
        The summed contribution of every finding that was not entered (shown as one line,
        never as reasons).
    """

    cause_id: str
    cause_name: str
    icd10: str | None
    probability: float
    value: float
    base_value: float
    contributions: tuple[Contribution, ...]
    not_assessed: float
    n_not_assessed: int

    @property
    def total(self) -> float:
        """``base_value + contributions + not_assessed``; equals ``value``."""
        return self.base_value + sum(c.contribution for c in self.contributions) + self.not_assessed

    def for_and_against(self) -> tuple[tuple[Contribution, ...], tuple[Contribution, ...]]:
        """Entered findings that raise the cause, and those that lower it."""
        return (tuple(c for c in self.contributions if c.contribution > 0),
                tuple(c for c in self.contributions if c.contribution < 0))

    def waterfall(self, limit: int = 12) -> list[WaterfallStep]:
        """The explanation as the steps of a waterfall chart, from the average case to this case.

        The average case's score, the ``limit`` largest contributions (the rest of the entered findings
        as one step), the findings not assessed as one step, and the cause's score; each
        step runs from ``start`` to ``end`` and the last contribution ends at ``value``.
        """
        shown, rest = self.contributions[:limit], self.contributions[limit:]
        moves = [(c.text, "for" if c.contribution >= 0 else "against", c.contribution) for c in shown]
        if rest:
            total = sum(c.contribution for c in rest)
            moves.append((f"{len(rest)} other entered findings", "for" if total >= 0 else "against", total))
        moves.append((f"{self.n_not_assessed} findings not assessed (together)", "not assessed", self.not_assessed))
        running = self.base_value
        steps = [WaterfallStep("Average synthetic case (base score)", "average case", 0.0, running)]
        for text, kind, move in moves:
            steps.append(WaterfallStep(text, kind, running, running + move))
            running += move
        steps.append(WaterfallStep(f"This case: score of {self.cause_name}", "score", 0.0, self.value))
        return steps

    def to_dict(self) -> dict:
        out = _fields(self)
        out["contributions"] = [c.to_dict() for c in self.contributions]
        return out


@dataclass(frozen=True)
class WaterfallStep:
    """One bar of a waterfall chart: ``kind`` is average case, for, against, not assessed or score."""

    text: str
    kind: str
    start: float
    end: float

    @property
    def contribution(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class NextFinding:
    """A finding worth asking or examining next."""

    finding_id: str
    label: str
    section: str
    expected_information_gain: float  # expected drop in the entropy of the differential, bits
    chance_top_cause_changes: float
    answers: tuple[tuple[str, float], ...]  # (answer label, predictive probability)

    def to_dict(self) -> dict:
        out = _fields(self)
        out["answers"] = [list(a) for a in self.answers]
        return out


@dataclass(frozen=True)
class Atypicality:
    """How usual a case's combination of findings is under the knowledge base."""

    is_atypical: bool
    percentile: float  # among generated cases with the same assessed findings
    log_evidence: float
    message: str | None
    # how many such cases: all of them (1,000) when the case is below the threshold, fewer
    # once enough fall below the case to settle that it is not (evidence_percentile's settle_at);
    # 0 for an impossible case
    reference_cases: int

    def to_dict(self) -> dict:
        out = _fields(self)
        if not math.isfinite(self.log_evidence):  # an impossible case: JSON has no -Infinity
            out["log_evidence"] = None
        return out
