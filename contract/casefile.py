"""Tables of cases (CSV or parquet) read as leniently as one case in JSON.

``crampdx findings`` promises that a case file maps finding ids *or labels* to values and that
binary findings take yes/no, true/false, 1/0; :func:`crampdx.contract.validate_case` keeps that
promise for one case. This module keeps it for a table of cases, with the same name and level
resolution (:mod:`crampdx.contract.values`), resolving each column once and each distinct
value once, so a file of 100,000 cases costs no more than a few vectorised passes. A case in
JSON is read by :func:`crampdx.contract.casejson.findings_from_json`.

Columns that are neither findings nor ``etiology`` (an ``id`` column, a site, a date) are
returned apart, unchanged, so the caller can carry them through to its output; a column whose
name is close to a finding's (``Agee``, ``pedal pulse``) is a misspelt finding and an error
with a suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crampdx.contract.case import Case, field_name, impossible_rows, validate_case
from crampdx.contract.limits import MAX_VALUE_CHARS
from crampdx.contract.casereading import (case_file_errors, check_table_columns, csv_delimiter, csv_options,
                                         read_case_table)
from crampdx.contract.schema import Finding, Interval, Schema, SchemaError, describe_rows
from crampdx.contract.values import (NOT_ASSESSED_WORDS, closest_finding, finding_id_for, finding_names, name_problem,
                                     parse_level, parse_number, unknown_finding_message)
from crampdx.errors import quote

__all__ = ["CaseTable", "LABEL", "case_file_errors", "check_table_columns", "csv_delimiter", "csv_options", "read_case_table",
           "resolve_case_table"]

LABEL = "etiology"
# pandas' default "missing" tokens, lower-cased: without them a CSV that says "NA" for a lab
# value not drawn would be refused, and with pandas' own handling "None" would stop being a level.
_PANDAS_NA = {"#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan", "<na>", "n/a", "na",
              "null", "nan", "none"}
_NOT_ASSESSED = NOT_ASSESSED_WORDS | _PANDAS_NA


@dataclass(frozen=True)
class CaseTable:
    """A table of cases split by role.

    Attributes
    ----------
    findings : pandas.DataFrame
        One column per finding given, named by finding id, holding level ids (binary and
        categorical) or the values as read (numeric; ``Schema.encode`` checks them), ``NaN``
        where not assessed. Ready for ``Schema.encode`` / ``Diagnoser.predict_proba``.
    label : pandas.Series or None
        The ``etiology`` column, as read.
    other : pandas.DataFrame
        Every other column, unchanged, in file order (empty unless ``keep_other``).
    codes : numpy.ndarray
        ``findings`` encoded by ``Schema.encode`` (n_cases, n_findings); ``NaN`` also where a
        result is known only as a range.
    ranges : dict
        Row position -> {finding id -> Interval} for results known only as a range
        (``low``, ``<3``).
    """

    findings: pd.DataFrame
    codes: np.ndarray
    label: pd.Series | None
    other: pd.DataFrame
    ranges: dict = field(default_factory=dict)

    def case(self, row: int, schema: Schema) -> Case:
        """Row ``row`` (0-based position) as one validated :class:`Case`."""
        values = {fid: value for fid, value in self.findings.iloc[row].items() if not _is_not_assessed(schema[fid], value)}
        values.update(self.ranges.get(row, {}))
        return validate_case(values, schema=schema)


def resolve_case_table(frame: pd.DataFrame, schema: Schema, *, keep_other: bool) -> CaseTable:
    """Resolve a table's columns to findings and its values to level ids.

    Parameters
    ----------
    frame : pandas.DataFrame
        As read by :func:`read_case_table` (or any frame of cases).
    schema : Schema
    keep_other : bool
        Whether columns that are neither findings nor ``etiology`` are carried (returned in
        ``other``) or refused. A column whose name is close to a finding's is refused either
        way, with a suggestion.

    Raises
    ------
    SchemaError
        One message naming every unknown or duplicated column, every unknown level, every
        non-number and every impossible value, each with its rows.
    """
    check_table_columns(frame, "the table")
    names = finding_names(schema)
    problems: list[str] = []
    findings: dict[str, pd.Series] = {}
    given_as: dict[str, str] = {}
    ranges: dict[int, dict[str, Interval]] = {}
    other: list[Any] = []
    for column in frame.columns:
        name = str(column)
        if name == LABEL:
            continue
        fid = finding_id_for(name, names)
        if fid is None:
            if keep_other and name_problem(name) is None and closest_finding(name, names) is None:
                other.append(column)
            elif keep_other:
                problems.append(f"{field_name(name)}: {name_problem(name) or unknown_finding_message(name, names)}")
            else:
                hint = name_problem(name) or unknown_finding_message(name, names).removeprefix("unknown finding; ")
                problems.append(f"unknown column {quote(name)}; {hint}")
            continue
        if fid in given_as:
            problems.append(f"columns {quote(given_as[fid])} and {quote(name)} both give {fid}; keep one")
            continue
        given_as[fid] = name
        series, problem, column_ranges = _resolve_column(schema[fid], frame[column], name)
        for row, interval in column_ranges.items():
            ranges.setdefault(row, {})[fid] = interval
        if problem:
            problems.append(problem)
        findings[fid] = series
    if not findings and not problems:  # ranked, this would be the prior for every row
        columns = ", ".join(quote(str(c)) for c in frame.columns[:8]) + (" …" if len(frame.columns) > 8 else "")
        problems.append(f"no column is a finding (columns: {columns}); name the columns by finding id or label "
                        "(`crampdx findings` lists them), separated by commas, semicolons or tabs")
    ordered = pd.DataFrame({fid: findings[fid] for fid in schema.ids if fid in findings}, index=frame.index)
    problems += impossible_rows(ordered, schema)
    codes = None
    try:
        codes = schema.encode(ordered)  # non-numbers and impossible values, with their rows
    except SchemaError as error:
        problems.append(str(error))
    if not problems:  # a row that gives nothing would be ranked by the prior alone
        problems += _rows_without_findings(frame, codes, ranges, list(given_as.values()))
    if problems:
        raise SchemaError("; ".join(problems))
    return CaseTable(
        findings=ordered,
        codes=codes,
        label=frame[LABEL] if LABEL in frame.columns else None,
        other=frame[other] if other else pd.DataFrame(index=frame.index),
        ranges=ranges,
    )


def _rows_without_findings(frame: pd.DataFrame, codes: np.ndarray, ranges: dict, columns: list[str]) -> list[str]:
    """Messages for the rows in which no finding was given: entirely empty rows (a
    spreadsheet's trailing ``,,,`` lines), and rows whose finding cells are all empty or
    "not assessed" while the row holds something else (often a row whose delimiters or
    quotes went wrong). Ranking either would show only how common each cause is, so both are
    refused rather than dropped (dropping would shift every later row of the output)."""
    nothing = np.isnan(codes).all(axis=1)
    nothing[list(ranges)] = False
    if not nothing.any():
        return []
    blank = nothing & frame.isna().all(axis=1).to_numpy()
    problems = []
    if blank.any():
        problems.append(f"{describe_rows(blank)} of the table {'are' if blank.sum() > 1 else 'is'} empty; delete "
                        f"{'them' if blank.sum() > 1 else 'it'}")
    if (nothing & ~blank).any():
        named = ", ".join(quote(c) for c in columns[:5]) + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")
        problems.append(f"{describe_rows(nothing & ~blank)}: no finding given (the finding columns {named} are all "
                        "empty or not assessed there); fill in at least one finding or delete the row, and check its "
                        "delimiters and quotes")
    return problems


def _is_not_assessed(finding: Finding, value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        return False
    text = value.strip().lower()
    if text not in _NOT_ASSESSED:
        return False
    # "none" is a level of some findings (thyroid symptoms: none): there it is an answer
    return not any(text in (level.id, level.label.lower()) for level in finding.levels)


def _resolve_column(finding: Finding, series: pd.Series, name: str) -> tuple[pd.Series, str | None, dict[int, Interval]]:
    """Level ids (binary, categorical) or values with "not assessed" words as NaN (numeric),
    and the rows whose numeric value is known only as a range.

    Each distinct value is resolved once (``pd.factorize``). On a bad level the cell becomes
    NaN (so ``Schema.encode`` can still report the other columns' problems in the same
    message) and the problem names the column and the rows.
    """
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == list(finding.level_ids):
        return series, None, {}  # already as crampdx writes it (parquet from `crampdx generate`)
    numeric_dtype = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if finding.is_numeric and numeric_dtype:
        return series, None, {}
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # missing cells: -1
    uniques = list(uniques)
    if finding.is_numeric:
        return _resolve_numeric(finding, series, name, codes, uniques)
    level_codes = np.full(len(uniques) + 1, -1, dtype=np.int64)  # the last entry: missing cells
    bad: list[tuple[int, Any, str]] = []
    for k, raw in enumerate(uniques):
        if _is_not_assessed(finding, raw):
            continue
        level, problem = parse_level(finding, _as_number_if_binary(finding, raw))
        if problem:
            bad.append((k, raw, problem))
        else:
            level_codes[k] = finding.code(level)
    resolved = pd.Series(pd.Categorical.from_codes(level_codes[codes], categories=list(finding.level_ids)), index=series.index)
    return resolved, _problems_text(finding, name, codes, bad), {}


def _problems_text(finding: Finding, name: str, codes: np.ndarray, bad: list) -> str | None:
    """One message naming the column and the rows of each bad value (the first three)."""
    if not bad:
        return None
    where = name if name == finding.id else f"{name} ({finding.id})"
    messages = [f"{where}, {describe_rows(codes == k)}: {problem}" for k, _, problem in bad[:3]]
    if len(bad) > 3:
        messages.append(f"{where}: {len(bad) - 3} more unknown values")
    return "; ".join(messages)


def _resolve_numeric(finding: Finding, series: pd.Series, name: str, codes: np.ndarray, uniques: list):
    """Numbers parsed as one case's would be (decimal comma, no guessed thousands separator),
    results in words or bounds (``low``, ``<3``) as ranges of their rows, NaN where not assessed."""
    values = np.full(len(uniques) + 1, np.nan)  # the last entry: missing cells
    ranged: dict[int, Interval] = {}
    bad: list[tuple[int, Any, str]] = []
    for k, raw in enumerate(uniques):
        if _is_not_assessed(finding, raw):
            continue
        value, _, problem = parse_number(finding, raw)
        if problem:
            bad.append((k, raw, problem))
        elif isinstance(value, Interval):
            ranged[k] = value
        else:
            values[k] = value
    ranges = {int(row): ranged[k] for k in ranged for row in np.flatnonzero(codes == k)}
    return pd.Series(values[codes], index=series.index), _problems_text(finding, name, codes, bad), ranges


def _as_number_if_binary(finding: Finding, raw: Any) -> Any:
    """'1.0' / '0.0' (a binary column saved from a float column) count as 1 / 0."""
    if finding.kind == "binary" and isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            return raw
        return number if number in (0.0, 1.0) else raw
    return raw
