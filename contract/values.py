"""One parser for every value a user types: finding names, levels, yes/no and numbers.

Used by :func:`crampdx.contract.validate_case` for one case and by
:mod:`crampdx.contract.casefile` for tables of cases, so that a case means the same
whether it comes from JSON, a CSV file, the dashboard or the service.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import re
from types import MappingProxyType
from typing import Any, Mapping

from crampdx.contract.limits import MAX_NAME_CHARS, MAX_NUMBER, MAX_VALUE_CHARS
from crampdx.contract.schema import Finding, Interval, Schema
from crampdx.errors import QUOTE_CHARS, clip, quote

__all__ = [
    "NOT_ASSESSED_WORDS",
    "SUGGESTION_CUTOFF",
    "closest_finding",
    "finding_id_for",
    "finding_names",
    "is_not_assessed",
    "name_problem",
    "parse_interval",
    "parse_level",
    "parse_number",
    "unknown_finding_message",
    "value_problem",
]

_TRUE = {"true", "yes", "y", "present", "1", "positive"}
_FALSE = {"false", "no", "n", "absent", "0", "negative"}
# Words that mean "not assessed" ("none" is not one of them: it is a level of some findings).
NOT_ASSESSED_WORDS = frozenset({"", "not assessed", "not_assessed", "na", "n/a", "null", "nan", "unknown", "?"})
_GROUPED_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$")
_CENSORED = re.compile(r"^(<=|>=|<|>|≤|≥)\s*(.+)$")
# Words for a result given without its value, each meaning one qualitative level.
QUALITATIVE_WORDS = {
    "low": "low", "decreased": "low", "reduced": "low", "below normal": "low", "subnormal": "low",
    "normal": "normal", "within normal limits": "normal", "wnl": "normal", "within reference": "normal",
    "high": "high", "raised": "high", "elevated": "high", "increased": "high", "above normal": "high",
    "undetectable": "undetectable", "not detectable": "undetectable", "suppressed": "undetectable",
    "markedly raised": "markedly_raised", "markedly elevated": "markedly_raised", "very high": "markedly_raised",
}
SUGGESTION_CUTOFF = 0.75  # a name this close to a finding's id or label is taken for a misspelling
_NAMES: dict[int, tuple[Schema, Mapping[str, str]]] = {}  # id(schema) -> (schema, its names)


def is_not_assessed(value: Any) -> bool:
    """Whether a raw value means "not assessed": None, NaN or a word such as ``"n/a"``.

    Examples
    --------
    >>> is_not_assessed(None), is_not_assessed(" N/A "), is_not_assessed("none"), is_not_assessed(0)
    (True, True, False, False)
    """
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and len(value) <= MAX_VALUE_CHARS and value.strip().lower() in NOT_ASSESSED_WORDS


def value_problem(raw: Any) -> str | None:
    """What is wrong with a raw value before its meaning is looked at: not one value (a
    list, an object), or text longer than :data:`~crampdx.contract.limits.MAX_VALUE_CHARS`.

    Examples
    --------
    >>> value_problem("2,9") is None, value_problem(10 ** 400) is None
    (True, True)
    >>> value_problem([2.9, 3.1])
    'expected one value (text or a number), got a list [2.9, 3.1]; give each finding one value'
    >>> value_problem("low " * 1000)[-84:]
    "…' (4,000 characters) is longer than the 1,000 characters a finding's value may have"
    """
    if isinstance(raw, str):
        if len(raw) > MAX_VALUE_CHARS:
            return f"{quote(raw)} is longer than the {MAX_VALUE_CHARS:,} characters a finding's value may have"
        return None
    if isinstance(raw, (numbers.Number, Interval)):
        return None
    return f"expected one value (text or a number), got a {type(raw).__name__} {quote(raw)}; give each finding one value"


def name_problem(key: Any) -> str | None:
    """What is wrong with a finding's name before it is looked up: not text, or longer than
    :data:`~crampdx.contract.limits.MAX_NAME_CHARS` (no finding has such a name).

    Examples
    --------
    >>> name_problem("Agee") is None
    True
    >>> name_problem("k" * 95_000)
    'a name of 95,000 characters; a finding is named by its id or label, at most 200 characters'
    """
    if isinstance(key, str) and len(key) > MAX_NAME_CHARS:
        return f"a name of {len(key):,} characters; a finding is named by its id or label, at most {MAX_NAME_CHARS} characters"
    return None


def parse_level(finding: Finding, raw: Any) -> tuple[str | None, str | None]:
    """The level id a raw answer stands for, or a message saying what is accepted.

    Binary findings take present/absent, yes/no, true/false, 1/0 (and booleans);
    categorical findings a level id or label, in any case.

    Returns
    -------
    level : str or None
    problem : str or None

    Examples
    --------
    >>> from crampdx.contract import load_schema
    >>> schema = load_schema()
    >>> parse_level(schema["med_diuretic"], "Yes")
    ('present', None)
    >>> parse_level(schema["pedal_pulses"], "Absent")
    ('absent', None)
    """
    problem = value_problem(raw)
    if problem:
        return None, problem
    text = raw.strip().lower() if isinstance(raw, str) else None  # no level is a number
    if finding.kind == "binary":
        if isinstance(raw, bool):
            return ("present" if raw else "absent"), None
        if isinstance(raw, numbers.Real) and raw in (0, 1):
            return ("present" if raw == 1 else "absent"), None
        if text in _TRUE:
            return "present", None
        if text in _FALSE:
            return "absent", None
        return None, f"{quote(raw)} is not a yes/no answer; use present/absent, yes/no, true/false or 1/0"
    for level in finding.levels:
        if text in (level.id, level.label.lower()):
            return level.id, None
    accepted = ", ".join(f"{level.id} ({level.label})" for level in finding.levels)
    return None, f"unknown level {quote(raw)}; expected one of {accepted}"


def _flag(finding: Finding, low: float, high: float) -> str | None:
    """"low" or "high" when the value (or the whole range) lies outside the reference range."""
    if not finding.abnormal_outside_reference:
        return None
    ref_low, ref_high = finding.reference
    return "low" if high <= ref_low and low < ref_low else "high" if low >= ref_high and high > ref_high else None


def _to_float(finding: Finding, raw: Any) -> tuple[float | None, str | None]:
    """A number from a number or a numeric string (decimal point or comma), or a problem."""
    if isinstance(raw, bool):
        return None, f"{raw!r} is not a number; expected {finding.unit}"
    if isinstance(raw, str) and _GROUPED_THOUSANDS.match(raw.strip()):
        # "12,000" could be twelve thousand or a decimal comma: never guess a lab value
        return None, (f"{quote(raw)} is ambiguous (a thousands separator or a decimal comma?); "
                      f"write it without a thousands separator, e.g. {clip(raw.strip().replace(',', ''), QUOTE_CHARS)}, in {finding.unit}")
    if isinstance(raw, numbers.Integral) and abs(raw) > MAX_NUMBER:  # float() would raise OverflowError
        return None, f"{quote(raw)} is beyond the range of numbers (±{MAX_NUMBER:.1e}); expected {finding.unit}"
    try:
        value = float(raw.strip().replace(",", ".")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError, OverflowError):
        return None, None
    if not math.isfinite(value):
        return None, f"{quote(raw)} is not a finite number; expected {finding.unit}"
    return value, None


def parse_interval(finding: Finding, raw: str) -> tuple[Interval | None, str | None]:
    """A result given in words (``"low"``, ``"raised"``, ``"undetectable"``) or censored
    (``"<3"``, ``">1000"``) as an :class:`~crampdx.contract.schema.Interval`, or a problem.

    Examples
    --------
    >>> from crampdx.contract import load_schema
    >>> schema = load_schema()
    >>> parse_interval(schema["potassium"], "Low")
    (Interval(text='low', low=1.0, high=3.5), None)
    >>> parse_interval(schema["vitamin_d"], "<3")
    (Interval(text='<3', low=2.0, high=3.0), None)
    """
    levels = finding.qualitative
    text = " ".join(str(raw).strip().lower().replace("_", " ").replace("-", " ").split())
    level = QUALITATIVE_WORDS.get(text)
    if level in levels:
        return Interval(level, *levels[level]), None
    censored = _CENSORED.match(text)
    if censored and levels:
        bound, problem = _to_float(finding, censored.group(2))
        if bound is None:
            return None, problem or f"{quote(raw)} is not a number after {censored.group(1)}; expected {finding.unit}"
        low, high = finding.hard
        if not low < bound < high:
            return None, f"{quote(raw)}: {bound:g} {finding.unit} is outside the plausible range {low:g}–{high:g} {finding.unit}"
        below = censored.group(1) in ("<", "<=", "≤")
        # the text states the bound the interval uses (":g" would turn <156202.41 into <156202)
        return Interval(f"{'<' if below else '>'}{bound:.15g}", low if below else bound, bound if below else high), None
    if not levels:
        return None, f"{quote(raw)} is not a number; expected {finding.unit}"
    words = ", ".join(levels)
    return None, (f"{quote(raw)} is not a number; expected {finding.unit}, a result in words ({words}) "
                  "or a censored value such as <3")


def parse_number(finding: Finding, raw: Any) -> tuple[float | Interval | None, str | None, str | None]:
    """A numeric finding's value in the schema's unit, its low/high flag, or a problem.

    Accepts numbers and numeric strings with a decimal point or a decimal comma; refuses a
    grouped thousands separator (``"12,000"`` could be either), non-finite numbers and
    values outside the hard plausible range. A result known only in words or as a bound
    (``"low"``, ``"<3"``) becomes an :class:`~crampdx.contract.schema.Interval`.

    Returns
    -------
    value : float, Interval or None
    flag : {"low", "high"} or None
        Outside the reference range (for findings marked abnormal there).
    problem : str or None

    Examples
    --------
    >>> from crampdx.contract import load_schema
    >>> potassium = load_schema()["potassium"]
    >>> parse_number(potassium, "2,9")
    (2.9, 'low', None)
    >>> parse_number(potassium, "low")
    (Interval(text='low', low=1.0, high=3.5), 'low', None)
    >>> parse_number(potassium, "12,000")[2]
    "'12,000' is ambiguous (a thousands separator or a decimal comma?); write it without a thousands separator, e.g. 12000, in mmol/L"
    """
    if isinstance(raw, Interval):  # already parsed (a validated case passed on)
        return parse_number(finding, raw.text)
    value, problem = None, value_problem(raw)
    if problem is None:
        value, problem = _to_float(finding, raw)
    if problem:
        return None, None, problem
    if value is None:
        if not isinstance(raw, str):
            return None, None, f"{quote(raw)} is not a number; expected {finding.unit}"
        interval, problem = parse_interval(finding, raw)
        if problem:
            return None, None, problem
        return interval, _flag(finding, interval.low, interval.high), None
    low, high = finding.hard
    if not low <= value <= high:
        return None, None, f"{value:g} {finding.unit} is outside the plausible range {low:g}–{high:g} {finding.unit}"
    return value, _flag(finding, value, value), None


def finding_names(schema: Schema) -> Mapping[str, str]:
    """Every name a finding may be given by (its id, its label in lower case) -> its id.

    Built once per schema (every case and every file asks), and read-only.

    Examples
    --------
    >>> from crampdx.contract import load_schema
    >>> finding_names(load_schema())["pedal pulses"]
    'pedal_pulses'
    """
    cached = _NAMES.get(id(schema))
    if cached is None or cached[0] is not schema:
        names: dict[str, str] = {}
        for finding in schema:
            names[finding.id] = finding.id
            names.setdefault(finding.label.lower(), finding.id)
        cached = _NAMES[id(schema)] = (schema, MappingProxyType(names))
    return cached[1]


def finding_id_for(key: str, names: Mapping[str, str]) -> str | None:
    """The finding id a name stands for (an id or a label, any case), or None (also for a
    name that is not text or is longer than any finding's)."""
    if not isinstance(key, str) or len(key) > MAX_NAME_CHARS:
        return None
    key = key.strip()
    return names.get(key) or names.get(key.lower())


def closest_finding(key: str, names: Mapping[str, str]) -> str | None:
    """The finding id an unknown name is probably a misspelling of, or None.

    Examples
    --------
    >>> from crampdx.contract import load_schema
    >>> closest_finding("Agee", finding_names(load_schema()))
    'age'
    """
    if not isinstance(key, str) or len(key) > MAX_NAME_CHARS:
        return None
    close = _closest(key.strip().lower(), tuple(names))
    return names[close] if close else None


@functools.lru_cache(maxsize=4096)  # difflib takes ~10 ms per name: a misspelling repeated in a file costs it once
def _closest(key: str, candidates: tuple[str, ...]) -> str | None:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=SUGGESTION_CUTOFF)
    return close[0] if close else None


def unknown_finding_message(key: str, names: Mapping[str, str], *, suggest: bool = True) -> str:
    """What to say about a name that is no finding: a suggestion when one is close (looked
    for only when ``suggest``: a case bounds how many unknown names it looks up)."""
    close = closest_finding(key, names) if suggest else None
    hint = f"did you mean {close!r}? " if close else ""
    return f"unknown finding; {hint}`crampdx findings` lists the ids, labels and accepted values"
