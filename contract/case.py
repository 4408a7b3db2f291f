"""One patient's findings, validated at the boundary.

``validate_case`` accepts what a clinician or a file would naturally give — finding ids or
display labels, level ids or labels, numbers or numeric strings, yes/no for binary
findings — and either returns a :class:`Case` or raises :class:`CaseError` naming every
offending field at once with what it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from crampdx.contract.limits import MAX_CASE_FIELDS
from crampdx.contract.schema import Finding, Interval, Schema, describe_rows
from crampdx.contract.schema_file import load_schema
from crampdx.contract.values import (finding_id_for, finding_names, is_not_assessed, name_problem, parse_level,
                                     parse_number, unknown_finding_message)
from crampdx.errors import QUOTE_CHARS, UserFacingError, quote

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Case", "CaseError", "describe_value", "impossible_combinations", "impossible_rows", "validate_case",
           "validate_what_is_valid"]

SHOWN_PROBLEMS = 10  # a message names this many problems and counts the rest; ``problems`` keeps all


class CaseError(ValueError, UserFacingError):
    """A case does not fit the finding schema. ``problems`` maps each field to its message."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        shown = [f"{name}: {message}" for name, message in list(self.problems.items())[:SHOWN_PROBLEMS]]
        more = len(self.problems) - SHOWN_PROBLEMS
        super().__init__("; ".join(shown) + (f"; and {more:,} more problems" if more > 0 else ""))


@dataclass(frozen=True)
class Case:
    """Validated findings of one patient.

    Attributes
    ----------
    values : dict
        Finding id -> level id (binary/categorical), float (numeric) or
        :class:`~crampdx.contract.schema.Interval` (a numeric result known only in words or
        as a bound), only the findings that were assessed, in schema order.
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
        """The case encoded: shape (1, n_findings), ``NaN`` where not assessed and where a
        result is known only as a range (see :attr:`intervals`). A new array at each call."""
        return self._encoded.copy()

    @cached_property  # frozen: an assessment encodes the case for its ranking and its atypical check
    def _encoded(self) -> np.ndarray:
        row = np.full((1, len(self.schema)), np.nan)
        positions, codes = [], []
        for fid, value in self.values.items():
            position = self.schema.position(fid)
            if isinstance(value, Interval):
                continue
            finding = self.schema.findings[position]
            positions.append(position)
            codes.append(value if finding.is_numeric else finding.code(value))
        row[0, positions] = codes
        return row

    @property
    def intervals(self) -> dict[str, Interval]:
        """Numeric findings known only as a range (``"low"``, ``"<3"``): finding id -> Interval."""
        return {fid: value for fid, value in self.values.items() if isinstance(value, Interval)}

    def to_frame(self) -> pd.DataFrame:
        """A one-row frame shaped like ``synthetic.generate``'s output (without the label)."""
        return self.schema.decode(self.codes())

    def describe(self, finding_id: str) -> str:
        """The entered value in clinical words, e.g. ``Potassium 2.9 mmol/L (low)``."""
        text = self.descriptions.get(finding_id)
        return text if text is not None else describe_value(self.schema[finding_id], self.values[finding_id],
                                                             self.flags.get(finding_id))

    @cached_property  # frozen: an assessment words each value for its findings, its explanations and its flags
    def descriptions(self) -> dict[str, str]:
        """Every entered value in clinical words (:meth:`describe`), in the order of :attr:`values`
        (kept: read it, do not change it)."""
        return {fid: describe_value(self.schema[fid], value, self.flags.get(fid)) for fid, value in self.values.items()}

    def with_values(self, **changes: Any) -> "Case":
        """A new validated case with some findings changed (``None`` removes one)."""
        merged = {**self.values, **changes}
        return validate_case({k: v for k, v in merged.items() if v is not None}, schema=self.schema)

    def to_dict(self) -> dict:
        """JSON-ready: finding id -> level id, number, or a range as entered (``"low"``, ``"<3"``)."""
        return {fid: value.text if isinstance(value, Interval) else value for fid, value in self.values.items()}


def describe_value(finding: Finding, value: Any, flag: str | None = None) -> str:
    """A finding's value in clinical words (``Pedal pulses: absent``, ``Varicose veins``)."""
    if finding.is_numeric:
        unit = "" if finding.unit == "ratio" else f" {finding.unit}"  # "ABI 0.62", not "0.62 ratio"
        if isinstance(value, Interval):
            if value.text in finding.qualitative:  # given in words: "Potassium: low (no value)"
                return f"{finding.label}: {value.text.replace('_', ' ')} (no value)"
            return f"{finding.label} {value.text}{unit} (no exact value)"
        text = f"{finding.label} {value:.{finding.decimals}f}{unit}"
        return f"{text} ({flag})" if flag else text
    if finding.kind == "binary":
        return finding.label if value == "present" else f"{finding.label}: absent"
    label = next(level.label for level in finding.levels if level.id == value)
    return f"{finding.label}: {label}"


_RULED: dict[int, tuple[Schema, tuple[Finding, ...]]] = {}  # id(schema) -> (schema, its findings with only_when)


def _ruled(schema: Schema) -> tuple[Finding, ...]:
    """The findings with an ``only_when`` rule, in schema order (found once per schema)."""
    kept = _RULED.get(id(schema))
    if kept is None or kept[0] is not schema:
        kept = _RULED[id(schema)] = (schema, tuple(f for f in schema if f.only_when is not None))
    return kept[1]


def impossible_combinations(values: Mapping[str, Any], schema: Schema | None = None) -> dict[str, str]:
    """Findings that each are valid but cannot occur together, named on the dependent field.

    The rules are the schema's ``only_when`` entries (a pregnancy only in women aged 10-64),
    which the knowledge base also follows, so validation and inference agree. A value that is
    not one of the finding's level ids (a label, a typo) is not judged here: validating it
    reports it.

    Examples
    --------
    >>> impossible_combinations({"sex": "male", "pregnancy": "trimester_3"})["pregnancy"]
    'Pregnancy 3rd trimester is not possible with sex male; set it to not pregnant or correct the sex'
    """
    schema = schema or load_schema()
    problems = {}
    for finding in _ruled(schema):
        rule, value = finding.only_when, values.get(finding.id)
        if rule is None or value is None or value == rule.otherwise or value not in finding.level_ids:
            continue
        age = values.get("age")
        because = rule.allows(values.get("sex"), age if isinstance(age, (int, float)) else None)
        if because:
            labels = {level.id: level.label for level in finding.levels}
            fix = "the sex" if because.startswith("sex") else "the age"
            problems[finding.id] = (f"{finding.label} {labels[value]} is not possible with {because}; "
                                    f"set it to {labels[rule.otherwise]} or correct {fix}")
    return problems


def impossible_rows(ordered: pd.DataFrame, schema: Schema) -> list[str]:
    """Messages for the rows of a resolved table (level ids, numbers) that break the schema's
    ``only_when`` rules, as :func:`impossible_combinations` does for one case."""
    import pandas as pd  # here, not at the top: the dashboard's first page validates one case, without pandas

    problems = []
    for finding in schema:
        rule = finding.only_when
        if rule is None or finding.id not in ordered:
            continue
        values = ordered[finding.id].astype(object)
        claimed = values.notna().to_numpy() & (values != rule.otherwise).to_numpy()
        sex = ordered["sex"].astype(object).to_numpy() if "sex" in ordered else np.full(len(ordered), None)
        age = pd.to_numeric(ordered["age"], errors="coerce").to_numpy(dtype=float) if "age" in ordered \
            else np.full(len(ordered), np.nan)
        out = np.zeros(len(ordered), dtype=bool)
        for row in np.flatnonzero(claimed):  # the one rule, OnlyWhen.allows, row by row (claims are few)
            known_sex = sex[row] if isinstance(sex[row], str) else None
            out[row] = rule.allows(known_sex, None if np.isnan(age[row]) else float(age[row])) is not None
        if (claimed & out).any():
            otherwise = next(level.label for level in finding.levels if level.id == rule.otherwise)
            problems.append(f"{finding.id}, {describe_rows(claimed & out)}: not possible with that row's sex or age; "
                            f"set it to {otherwise} or correct the sex or age")
    return problems


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

    Examples
    --------
    >>> case = validate_case({"potassium": "2,9", "Leg weakness": "yes", "med_diuretic": True, "age": 71})
    >>> dict(case.values), dict(case.flags)
    ({'weakness_reported': 'present', 'potassium': 2.9, 'age': 71.0, 'med_diuretic': 'present'}, {'potassium': 'low'})
    >>> case.describe("potassium")
    'Potassium 2.9 mmol/L (low)'
    >>> try:
    ...     validate_case({"potassium": 20, "Agee": 70})
    ... except CaseError as error:
    ...     for field, message in error.problems.items():
    ...         print(f"{field}: {message}")
    potassium: 20 mmol/L is outside the plausible range 1–9 mmol/L
    Agee: unknown finding; did you mean 'age'? `crampdx findings` lists the ids, labels and accepted values
    """
    if isinstance(mapping, Case):
        return mapping
    schema = schema or load_schema()
    if not isinstance(mapping, Mapping):
        raise CaseError({"case": f"expected a mapping of finding -> value, got {type(mapping).__name__}"})
    if len(mapping) > MAX_CASE_FIELDS:  # refused before any work: a case has 129 findings
        raise CaseError({"case": f"{len(mapping):,} fields given; a case has at most {MAX_CASE_FIELDS:,} "
                                 "(one per finding, by id or label)"})
    names = finding_names(schema)
    problems: dict[str, str] = {}
    found: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for key, raw in mapping.items():
        fid = finding_id_for(key, names)
        if fid is None:  # a suggestion for the first few only: each costs a fuzzy search
            suggest = len(problems) < SHOWN_PROBLEMS
            problems[field_name(key)] = name_problem(key) or unknown_finding_message(key, names, suggest=suggest)
            continue
        if is_not_assessed(raw):
            continue
        if fid in found:
            problems[fid] = f"given twice (as {fid!r} and by its label)"
            continue
        finding = schema[fid]
        if finding.is_numeric:
            value, flag, problem = parse_number(finding, raw)
            if flag:
                flags[fid] = flag
        else:
            value, problem = parse_level(finding, raw)
        if problem:
            problems[fid] = problem
        else:
            found[fid] = value
    for fid, message in impossible_combinations(found, schema).items():
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

    Examples
    --------
    >>> case, problems = validate_what_is_valid({"sodium": 128, "potassium": 20})
    >>> dict(case.values), list(problems)
    ({'sodium': 128.0}, ['potassium'])
    """
    try:
        return validate_case(mapping, schema=schema), {}
    except CaseError as error:
        if not isinstance(mapping, Mapping) or len(mapping) > MAX_CASE_FIELDS:
            raise  # nothing in it is valid on its own
        names = finding_names(schema or load_schema())
        valid = {key: value for key, value in mapping.items()
                 if finding_id_for(key, names) not in (None, *error.problems) and key not in error.problems}
        return validate_case(valid, schema=schema), error.problems


def field_name(key: Any) -> str:
    """How a message names a field the user gave: as written when it is short, printable text,
    else through :func:`~crampdx.errors.quote`."""
    return key if isinstance(key, str) and len(key) <= QUOTE_CHARS and key.isprintable() else quote(key)
