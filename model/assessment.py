"""What crampdx says about one case: the one result type every front end renders.

:meth:`crampdx.model.Diagnoser.assess` returns an :class:`Assessment`; the command line, the
dashboard, the exports and the HTTP service render it (:mod:`crampdx.render`) or emit
:meth:`Assessment.to_dict` unchanged. That dict is a versioned JSON shape described by
``model/assessment.schema.json`` (JSON Schema 2020-12), which the tests check real outputs
against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Mapping

from crampdx import DISCLAIMER
from crampdx.contract.case import Case
from crampdx.model.red_flags import RedFlag
from crampdx.model.results import Atypicality, Cause, Explanation, NextFinding

__all__ = ["ASSESSMENT_FORMAT", "ASSESSMENT_FORMAT_VERSION", "ASSESSMENT_SCHEMA_PATH", "Assessment", "ModelIdentity",
           "assessment_json_schema"]

ASSESSMENT_FORMAT = "crampdx-assessment"
ASSESSMENT_FORMAT_VERSION = 3  # 2: explanations as a list, flags, n_causes (crampdx 0.2); 3: atypical.reference_cases
ASSESSMENT_SCHEMA_PATH = Path(__file__).with_name("assessment.schema.json")


@dataclass(frozen=True)
class ModelIdentity:
    """Which model and which knowledge gave an assessment (never where it is stored)."""

    crampdx_version: str
    created: str | None
    model_sha256: str | None
    schema_sha256: str
    knowledge_sha256: str

    def to_dict(self) -> dict:
        return {"crampdx_version": self.crampdx_version, "created": self.created, "model_sha256": self.model_sha256,
                "schema_sha256": self.schema_sha256, "knowledge_sha256": self.knowledge_sha256}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Assessment:
    """Everything crampdx says about one case.

    Attributes
    ----------
    case : Case
        The validated findings.
    causes : tuple of Cause
        The whole differential, most probable first; the probabilities sum to 1.
    red_flags : tuple of RedFlag
        Alerts from the seed's clinical pitfalls, most severe first, computed from
        ``causes`` (never from a second ranking).
    explanations : tuple of Explanation
        The explanations asked for (by default of the top cause).
    next_findings : tuple of NextFinding or None
        What to ask or examine next; None when not asked for (it costs more).
    atypicality : Atypicality or None
        How usual the combination of findings is; None when not asked for.
    model : ModelIdentity
    top : int or None
        How many causes :meth:`to_dict` and the renderers report (None: all).
    not_used : mapping
        Entries that were made but failed validation (field -> message), reported so that
        nothing entered disappears silently from the record.
    created : str
        When the assessment was made (UTC, ISO 8601).
    disclaimer : str
    """

    case: Case
    causes: tuple[Cause, ...]
    red_flags: tuple[RedFlag, ...]
    explanations: tuple[Explanation, ...]
    next_findings: tuple[NextFinding, ...] | None
    atypicality: Atypicality | None
    model: ModelIdentity
    top: int | None = None
    not_used: Mapping[str, str] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    disclaimer: str = DISCLAIMER

    @property
    def shown_causes(self) -> tuple[Cause, ...]:
        """The causes reported: the ``top`` most probable (all when ``top`` is None)."""
        return self.causes if self.top is None else self.causes[:self.top]

    def explanation(self, cause_id: str) -> Explanation | None:
        """The explanation of one cause, if it was asked for."""
        return next((e for e in self.explanations if e.cause_id == cause_id), None)

    def to_dict(self) -> dict:
        """The versioned JSON shape (``model/assessment.schema.json``).

        ``findings`` is the case as finding id -> level id or number, so an exported
        assessment can be imported again as a case.
        """
        case = self.case
        return {
            "format": ASSESSMENT_FORMAT,
            "format_version": ASSESSMENT_FORMAT_VERSION,
            "created": self.created,
            "disclaimer": self.disclaimer,
            "model": self.model.to_dict(),
            "findings": case.to_dict(),
            "findings_text": dict(case.descriptions),
            "flags": dict(case.flags),
            "entries_not_used": dict(self.not_used),
            "n_causes": len(self.causes),
            "differential": [c.to_dict() for c in self.shown_causes],
            "red_flags": [flag.to_dict() for flag in self.red_flags],
            "explanations": [e.to_dict() for e in self.explanations],
            "next_best_findings": None if self.next_findings is None else [n.to_dict() for n in self.next_findings],
            "atypical": None if self.atypicality is None else self.atypicality.to_dict(),
        }


@cache
def _schema_text() -> str:
    return ASSESSMENT_SCHEMA_PATH.read_text(encoding="utf-8")


def assessment_json_schema() -> dict:
    """The JSON Schema of :meth:`Assessment.to_dict` (a fresh copy).

    Examples
    --------
    >>> schema = assessment_json_schema()
    >>> schema["properties"]["format_version"]["const"] == ASSESSMENT_FORMAT_VERSION
    True
    """
    return json.loads(_schema_text())
