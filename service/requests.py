"""The bodies the service accepts, with the examples its OpenAPI page shows.

A case is ``findings``: finding id or label -> value, exactly as a case file for
``crampdx predict`` (numbers, level ids or labels, yes/no, a result in words such as
``"low"``, a bound such as ``"<3.5"``). The values are checked by the same parser as every
other front end (:func:`crampdx.contract.validate_case`), so an error names the field in the
same words; unknown body fields are refused rather than ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AssessRequest", "CaseRequest", "ExplainRequest", "NextFindingsRequest", "EXAMPLE_FINDINGS"]

EXAMPLE_FINDINGS: dict[str, Any] = {
    "cramp_timing": "nocturnal_at_rest",
    "cramp_location": "calf",
    "age": 67,
    "sex": "female",
    "potassium": 2.7,
    "med_diuretic": "present",
    "diarrhea_or_vomiting": "absent",
}
MAX_NEXT_FINDINGS = 20

_FINDINGS = Field(
    ...,
    description="Finding id (or label) -> value; leave out what was not assessed. "
                "`GET /v1/findings` lists every finding with its levels, unit and ranges.",
    examples=[EXAMPLE_FINDINGS],
)


class CaseRequest(BaseModel):
    """One patient's findings."""

    model_config = ConfigDict(extra="forbid", strict=True)
    findings: dict[str, Any] = _FINDINGS


class AssessRequest(CaseRequest):
    """A case and what to say about it."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"findings": EXAMPLE_FINDINGS, "top": 5, "explain": 1, "next_findings": 0}]})
    top: int = Field(10, ge=1, le=1000, description="how many causes to list (the ranking is over all of them)")
    explain: int | str | list[str] = Field(
        1, description="explain this many of the most probable causes, or this cause id, or these cause ids "
                       "(`GET /v1/classes`)")
    next_findings: int = Field(0, ge=0, le=MAX_NEXT_FINDINGS,
                               description="how many findings to suggest asking or examining next (0: none; slower)")
    atypical: bool = Field(True, description="run the atypical-case check against generated cases")


class ExplainRequest(CaseRequest):
    """A case and the cause to explain."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"findings": EXAMPLE_FINDINGS, "cause": "hypokalemia"}]})
    cause: str = Field(..., description="a cause id from `GET /v1/classes`", examples=["hypokalemia"])


class NextFindingsRequest(CaseRequest):
    """A case and how many next findings to suggest."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"findings": EXAMPLE_FINDINGS, "k": 5}]})
    k: int = Field(5, ge=1, le=MAX_NEXT_FINDINGS, description="how many findings to suggest")
