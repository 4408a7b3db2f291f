"""One patient's findings, validated at the boundary.

``validate_case`` accepts what a clinician or a file would naturally give — finding ids or
display labels, level ids or labels, numbers or numeric strings, yes/no for binary
findings — and either returns a :class:`Case` or raises :class:`CaseError` naming every
offending field at once with what it accepts.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from model.schema import Finding, Schema, load_schema

__all__ = ["Case", "CaseError", "describe_value", "validate_case", "validate_what_is_valid"]

_TRUE = {"true", "yes", "y", "present", "1", "positive"}
_FALSE = {"false", "no", "n", "absent", "0", "negative"}
_EMPTY = {"", "not assessed", "not_assessed", "na", "n/a", "null", "nan", "unknown", "?"}  # not "none": a level id


class CaseError(ValueError):
    """A case does not fit the finding schema. ``problems`` maps each field to its message."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.problems.items()))


@dataclass(frozen=True)
class Case:
    """Validated findings of one patient.

    Attributes
    ----------
    values : dict
        Finding id -> level id (binary/categorical) or float (numeric), only the findings
        that were assessed, in schema order.
    flags : dict
        Numeric finding id -> ``"low"`` or ``"high"`` when outside its reference range.
    """

    values: Mapping[str, Any]
    flags: Mapping[str, str] = field(default_factory=dict)
    schema: Schema = field(default_factory=load_schema, repr=False, compare=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, finding_id: object) -> bool:
        return finding_id in self.values

    def codes(self) -> np.ndarray:
        """The case encoded for the model: shape (1, n_findings), ``NaN`` where not assessed."""
        row = np.full((1, len(self.schema)), np.nan)
        for fid, value in self.values.items():
            finding = self.schema[fid]
            row[0, self.schema.position(fid)] = value if finding.is_numeric else finding.code(value)
        return row

    def to_frame(self) -> pd.DataFrame:
        """A one-row frame shaped like ``synthetic.generate``'s output (without the label)."""
        return self.schema.decode(self.codes())

    def describe(self, finding_id: str) -> str:
        """The entered value in clinical words, e.g. ``Potassium 2.9 mmol/L (low)``."""
        return describe_value(self.schema[finding_id], self.values[finding_id], self.flags.get(finding_id))

    def with_values(self, **changes: Any) -> "Case":
        """A new validated case with some findings changed (``None`` removes one)."""
        merged = {**self.values, **changes}
        return validate_case({k: v for k, v in merged.items() if v is not None}, schema=self.schema)

    def to_dict(self) -> dict:
        """JSON-ready: finding id -> level id or number."""
        return dict(self.values)


def describe_value(finding: Finding, value: Any, flag: str | None = None) -> str:
    """A finding's value in clinical words (``Pedal pulses: absent``, ``Varicose veins``)."""
    if finding.is_numeric:
        unit = "" if finding.unit == "ratio" else f" {finding.unit}"  # "ABI 0.62", not "0.62 ratio"
        text = f"{finding.label} {value:.{finding.decimals}f}{unit}"
        return f"{text} ({flag})" if flag else text
    if finding.kind == "binary":
        return finding.label if value == "present" else f"{finding.label}: absent"
    label = next(level.label for level in finding.levels if level.id == value)
    return f"{finding.label}: {label}"


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in _EMPTY


def _level(finding: Finding, raw: Any) -> tuple[str | None, str | None]:
    if finding.kind == "binary":
        if isinstance(raw, bool):
            return ("present" if raw else "absent"), None
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return ("present" if raw == 1 else "absent"), None
        text = str(raw).strip().lower()
        if text in _TRUE:
            return "present", None
        if text in _FALSE:
            return "absent", None
        return None, f"{raw!r} is not a yes/no answer; use present/absent, yes/no, true/false or 1/0"
    text = str(raw).strip().lower()
    for level in finding.levels:
        if text in (level.id, level.label.lower()):
            return level.id, None
    accepted = ", ".join(f"{level.id} ({level.label})" for level in finding.levels)
    return None, f"unknown level {raw!r}; expected one of {accepted}"


PREGNANCY_AGE = (10, 60)  # assumption: outside these ages a pregnancy is not physiologically possible


def _impossible_combinations(values: Mapping[str, Any]) -> dict[str, str]:
    """Findings that each are valid but cannot occur together, named on the dependent field."""
    problems = {}
    pregnancy = values.get("pregnancy")
    if pregnancy is not None and pregnancy != "not_pregnant":
        age = values.get("age")
        if values.get("sex") == "male":
            problems["pregnancy"] = "a pregnancy is not possible with sex male; set pregnancy to not pregnant or correct the sex"
        elif age is not None and not PREGNANCY_AGE[0] <= age <= PREGNANCY_AGE[1]:
            problems["pregnancy"] = (f"a pregnancy is not possible at age {age:g}; set pregnancy to not pregnant "
                                     "or correct the age")
    return problems


_GROUPED_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$")


def _number(finding: Finding, raw: Any) -> tuple[float | None, str | None, str | None]:
    if isinstance(raw, bool):
        return None, None, f"{raw!r} is not a number; expected {finding.unit}"
    if isinstance(raw, str) and _GROUPED_THOUSANDS.match(raw.strip()):
        # "12,000" could be twelve thousand or a decimal comma: never guess a lab value
        return None, None, (f"{raw!r} is ambiguous (a thousands separator or a decimal comma?); "
                            f"write it without a thousands separator, e.g. {raw.replace(',', '')}, in {finding.unit}")
    try:
        value = float(str(raw).strip().replace(",", ".")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        return None, None, f"{raw!r} is not a number; expected {finding.unit}"
    if not math.isfinite(value):
        return None, None, f"{raw!r} is not a finite number; expected {finding.unit}"
    low, high = finding.hard
    if not low <= value <= high:
        return None, None, f"{value:g} {finding.unit} is outside the plausible range {low:g}–{high:g} {finding.unit}"
    ref_low, ref_high = finding.reference
    flag = None
    if finding.abnormal_outside_reference:
        flag = "low" if value < ref_low else "high" if value > ref_high else None
    return value, flag, None


def _resolve_names(schema: Schema) -> dict[str, str]:
    names = {}
    for finding in schema:
        names[finding.id] = finding.id
        names.setdefault(finding.label.lower(), finding.id)
    return names


SUGGESTION_CUTOFF = 0.75  # a name this close to a finding's id or label is taken for a misspelling


def finding_id_for(key: str, names: Mapping[str, str]) -> str | None:
    """The finding id a name stands for (an id or a label, any case), or None."""
    key = str(key).strip()
    return names.get(key) or names.get(key.lower())


def closest_finding(key: str, names: Mapping[str, str]) -> str | None:
    """The finding id an unknown name is probably a misspelling of, or None."""
    close = difflib.get_close_matches(str(key).strip().lower(), list(names), n=1, cutoff=SUGGESTION_CUTOFF)
    return names[close[0]] if close else None


def _unknown_finding(key: str, names: Mapping[str, str]) -> str:
    close = closest_finding(key, names)
    hint = f"did you mean {close!r}? " if close else ""
    return f"unknown finding; {hint}`crampdx findings` lists the ids, labels and accepted values"


def validate_case(mapping: Mapping[str, Any] | Case, *, schema: Schema | None = None) -> Case:
    """Validate one case against the finding schema.

    Parameters
    ----------
    mapping : mapping or Case
        Finding ids (or display labels) -> values. Binary findings accept present/absent,
        yes/no, true/false, 1/0; categorical findings a level id or label; numeric findings
        a number or numeric string in the schema's unit. ``None``, ``NaN`` and empty
        strings mean "not assessed" and are dropped. A row of ``synthetic.generate``'s
        output with its missing findings dropped is a valid case.
    schema : Schema, optional
        The shipped schema by default.

    Returns
    -------
    Case

    Raises
    ------
    CaseError
        Naming every unknown finding, unknown level, non-number and value outside the hard
        plausible range, each with what is accepted.
    """
    if isinstance(mapping, Case):
        return mapping
    schema = schema or load_schema()
    if not isinstance(mapping, Mapping):
        raise CaseError({"case": f"expected a mapping of finding -> value, got {type(mapping).__name__}"})
    names = _resolve_names(schema)
    problems: dict[str, str] = {}
    found: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for key, raw in mapping.items():
        fid = finding_id_for(key, names)
        if fid is None:
            problems[str(key)] = _unknown_finding(str(key), names)
            continue
        if _is_empty(raw):
            continue
        if fid in found:
            problems[fid] = f"given twice (as {fid!r} and by its label)"
            continue
        finding = schema[fid]
        if finding.is_numeric:
            value, flag, problem = _number(finding, raw)
            if flag:
                flags[fid] = flag
        else:
            value, problem = _level(finding, raw)
        if problem:
            problems[fid] = problem
        else:
            found[fid] = value
    for fid, message in _impossible_combinations(found).items():
        problems.setdefault(fid, message)
    if problems:
        raise CaseError(problems)
    ordered = {fid: found[fid] for fid in schema.ids if fid in found}
    return Case(values=ordered, flags={fid: flags[fid] for fid in ordered if fid in flags}, schema=schema)


def validate_what_is_valid(mapping: Mapping[str, Any], *, schema: Schema | None = None) -> tuple[Case, dict[str, str]]:
    """The valid part of a case, and what is wrong with the rest.

    For a form that is being filled in: a wrong entry is reported while every other entry
    still counts.

    Returns
    -------
    case : Case
        The entries that passed validation.
    problems : dict
        Field -> message for each entry left out (empty when everything is valid).
    """
    try:
        return validate_case(mapping, schema=schema), {}
    except CaseError as error:
        valid = {key: value for key, value in mapping.items() if key not in error.problems}
        return validate_case(valid, schema=schema), error.problems
