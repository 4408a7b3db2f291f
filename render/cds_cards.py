"""An assessment as CDS Hooks 2.0 cards: how an electronic health record shows crampdx.

Red flags become ``critical`` (urgent) or ``warning`` cards, advice an ``info`` card; one
``info`` card gives the top causes with their probabilities and the findings behind each,
and what the record held that crampdx could not use. Card fields follow the CDS Hooks 2.0
specification (``summary`` under 140 characters, ``detail`` in Markdown, ``indicator``,
``source`` with a ``label``). Strings that come from the record are shown literally.
"""

from __future__ import annotations

import uuid
from typing import Iterable, Sequence

from crampdx import __version__
from crampdx.model.assessment import Assessment
from crampdx.model.red_flags import RedFlag
from crampdx.model.results import Explanation
from crampdx.render.format import literal_markdown, percent

__all__ = ["CARD_SUMMARY_LIMIT", "INDICATOR_OF_SEVERITY", "assessment_cards", "card_source"]

CARD_SUMMARY_LIMIT = 140  # CDS Hooks: "summary ... SHALL be less than 140 characters"
INDICATOR_OF_SEVERITY = {"urgent": "critical", "warning": "warning", "advice": "info"}
CAUSES_ON_CARD = 3
REASONS_PER_CAUSE = 3


def card_source(topic: str | None = None) -> dict:
    """The ``source`` of every crampdx card (who says this, and on what footing)."""
    source = {"label": f"crampdx {__version__} (decision support trained on synthetic cases; not validated on patients)"}
    if topic:
        source["topic"] = {"system": "https://crampdx.invalid/topics", "code": topic, "display": topic.replace("_", " ")}
    return source


def _summary(text: str) -> str:
    """Text shortened to fit a card summary (an ellipsis shows where it was cut)."""
    text = " ".join(text.split())
    return text if len(text) < CARD_SUMMARY_LIMIT else text[: CARD_SUMMARY_LIMIT - 2].rstrip() + "…"


def _summary_of_causes(causes) -> str:
    """The most likely causes that fit a summary whole (never a probability cut in two)."""
    for shown in range(len(causes), 0, -1):
        text = "Leg cramps, most likely: " + ", ".join(f"{c.name} {percent(c.probability)}" for c in causes[:shown])
        if len(text) < CARD_SUMMARY_LIMIT:
            return text
    return _summary(f"Leg cramps, most likely: {causes[0].name} {percent(causes[0].probability)}")


def _red_flag_card(flag: RedFlag, disclaimer: str) -> dict:
    detail = [flag.message]
    if flag.because:
        detail += ["", "Because: " + "; ".join(flag.because) + "."]
    detail += ["", f"*{disclaimer}*"]
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(f"{flag.title}"),
        "indicator": INDICATOR_OF_SEVERITY[flag.severity],
        "detail": "\n".join(detail),
        "source": card_source(flag.id),
    }


def _reasons(explanation: Explanation | None) -> str:
    if explanation is None:
        return ""
    supporting, _ = explanation.for_and_against()
    texts = [c.text for c in supporting[:REASONS_PER_CAUSE]]
    return f" — because of {'; '.join(texts)}" if texts else " — no entered finding argues for it"


def _differential_card(assessment: Assessment, not_used: Sequence[str]) -> dict:
    causes = assessment.causes[:CAUSES_ON_CARD]
    summary = _summary_of_causes(causes)
    detail = ["**Most likely causes** (probabilities add up over all "
              f"{len(assessment.causes)} causes crampdx knows):", ""]
    for rank, cause in enumerate(causes, 1):
        code = f" ({cause.icd10})" if cause.icd10 else ""
        detail.append(f"{rank}. **{cause.name}**{code}: {percent(cause.probability)}{_reasons(assessment.explanation(cause.id))}")
    entered = [assessment.case.describe(fid) for fid in assessment.case]
    detail += ["", f"**Findings used** ({len(entered)}): " + ("; ".join(entered) if entered else "none") + "."]
    if assessment.atypicality is not None and assessment.atypicality.is_atypical:
        detail += ["", f"⚠ {assessment.atypicality.message}"]
    if not_used:
        detail += ["", f"**Not used** ({len(not_used)}):", ""] + [f"- {literal_markdown(item)}" for item in not_used]
    detail += ["", f"*{assessment.disclaimer}*"]
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(summary),
        "indicator": "info",
        "detail": "\n".join(detail),
        "source": card_source("differential"),
    }


def assessment_cards(assessment: Assessment, not_used: Iterable[str] = ()) -> list[dict]:
    """The CDS Hooks cards of one assessment: red flags first, then the differential.

    Parameters
    ----------
    assessment : Assessment
        Made with explanations for at least the top causes shown (``explain=3``), so that each
        cause on the card names the findings behind it.
    not_used : iterable of str
        What the record held that crampdx could not use, one plain sentence each (shown
        literally, never as Markdown).

    Returns
    -------
    list of dict
        CDS Hooks 2.0 cards.
    """
    not_used = [*(f"{field}: {message}" for field, message in assessment.not_used.items()), *not_used]
    cards = [_red_flag_card(flag, assessment.disclaimer) for flag in assessment.red_flags]
    cards.append(_differential_card(assessment, not_used))
    return cards
