"""The finding schema: what a case may contain, and how a case becomes numbers.

The schema is data (``contract/findings.toml``, read by :mod:`crampdx.contract.schema_file`);
this module holds its types and the one encoding every other part of crampdx uses:

* binary and categorical findings are carried in frames as their level ids (pandas
  ``Categorical`` columns whose categories are the schema's levels in schema order) and
  encoded as the level's position: ``0, 1, ...`` (binary: ``absent`` = 0, ``present`` = 1);
* numeric findings are floats in the schema's unit; a missing value (``NaN``) always means "not assessed".
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np

from crampdx.errors import UserFacingError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BINARY_LEVELS",
    "Finding",
    "Interval",
    "OnlyWhen",
    "Level",
    "Schema",
    "SchemaError",
    "describe_rows",
]

SCHEMA_FORMAT_VERSION = 1
KINDS = ("binary", "categorical", "numeric")
BINARY_LEVELS = (("absent", "absent"), ("present", "present"))


class SchemaError(ValueError, UserFacingError):
    """A schema file, or a frame checked against the schema, is not as expected."""


@dataclass(frozen=True)
class Level:
    """One level of a binary or categorical finding: a stable id and a display label."""

    id: str
    label: str


@dataclass(frozen=True)
class Interval:
    """A numeric finding known only as a range: a result given in words ("low") or censored ("<3").

    ``low`` and ``high`` are in the finding's unit and lie within its hard range; ``text`` is
    the entry in canonical form (a qualitative level id, or ``<x`` / ``>x``).
    """

    text: str
    low: float
    high: float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class OnlyWhen:
    """Where a finding's levels other than ``otherwise`` are physically possible (pregnancy:
    women aged 10-64). Validation refuses the rest, and the knowledge base gives it
    probability zero there and nowhere else: one source of truth for both."""

    otherwise: str
    sex: str | None = None
    age: tuple[float, float] | None = None

    def allows(self, sex: str | None, age: float | None) -> str | None:
        """None when the combination is possible (or not known), else what rules it out."""
        if self.sex is not None and sex is not None and sex != self.sex:
            return f"sex {sex}"
        if self.age is not None and age is not None and not self.age[0] <= math.floor(age) <= self.age[1]:
            return f"age {age:g}"
        return None


@dataclass(frozen=True)
class Finding:
    """One finding of the schema.

    Attributes
    ----------
    id : str
        Stable snake_case identifier, the column name in every frame.
    label : str
        Display label for clinicians.
    section : str
        One of the schema's sections (history, examination, laboratory, background).
    kind : {"binary", "categorical", "numeric"}
    levels : tuple of Level
        Ordered levels (empty for numeric findings); a level's position is its code.
    unit : str or None
        Unit of a numeric finding.
    reference : tuple of float or None
        Reference (normal) range of a numeric finding; also the bounds of its low / within /
        high answer bins in ``next_best_findings``.
    abnormal_outside_reference : bool
        Whether a value outside the reference range is abnormal and marked low/high (true for
        measurements; false for age, whose "reference" is only a band).
    hard : tuple of float or None
        Hard plausible range of a numeric finding; values outside it are rejected.
    decimals : int
        Decimals to show a numeric value with.
    group : str or None
        Sub-group within the background section (demographics, comorbidities,
        medications, context).
    help : str or None
        A short note for the clinician, citing the seed where it can.
    extra_qualitative : tuple of (str, float, float)
        Qualitative results beyond low / normal / high, with their range (TSH
        "undetectable", CK "markedly_raised").
    only_when : OnlyWhen or None
        Where levels other than ``only_when.otherwise`` are possible at all.
    """

    id: str
    label: str
    section: str
    kind: str
    levels: tuple[Level, ...] = ()
    unit: str | None = None
    reference: tuple[float, float] | None = None
    hard: tuple[float, float] | None = None
    decimals: int = 1
    group: str | None = None
    help: str | None = None
    abnormal_outside_reference: bool = True
    extra_qualitative: tuple[tuple[str, float, float], ...] = ()
    only_when: OnlyWhen | None = None

    @property
    def is_numeric(self) -> bool:
        return self.kind == "numeric"

    @property
    def qualitative(self) -> dict[str, tuple[float, float]]:
        """The results a measurement may be given as in words, each with its range.

        ``low``, ``normal`` and ``high`` split the hard range at the reference range; some
        findings add their own (``undetectable``). Findings whose reference range is only a
        band (age) have none.
        """
        if not self.is_numeric or not self.abnormal_outside_reference:
            return {}
        (hard_low, hard_high), (ref_low, ref_high) = self.hard, self.reference
        levels = {"low": (hard_low, ref_low), "normal": (ref_low, ref_high), "high": (ref_high, hard_high)}
        levels.update({name: (low, high) for name, low, high in self.extra_qualitative})
        return levels

    @cached_property  # frozen: made once (every level answer a case gives looks it up)
    def level_ids(self) -> tuple[str, ...]:
        return tuple(level.id for level in self.levels)

    def code(self, level_id: str) -> int:
        """Position of ``level_id`` among the levels (its numeric code)."""
        try:
            return self.level_ids.index(level_id)
        except ValueError:
            raise SchemaError(
                f"{self.id}: unknown level {level_id!r}; expected one of {', '.join(self.level_ids)}"
            ) from None


@dataclass(frozen=True)
class Schema:
    """The ordered set of findings, with encoding between frames and arrays."""

    findings: tuple[Finding, ...]
    sections: Mapping[str, str]
    format_version: int = SCHEMA_FORMAT_VERSION
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.id: i for i, f in enumerate(self.findings)})

    # -- lookup -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self):
        return iter(self.findings)

    def __contains__(self, finding_id: object) -> bool:
        return finding_id in self._index

    def __getitem__(self, finding_id: str) -> Finding:
        try:
            return self.findings[self._index[finding_id]]
        except KeyError:
            raise SchemaError(f"unknown finding {finding_id!r}") from None

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.findings)

    def position(self, finding_id: str) -> int:
        """Column position of a finding in encoded arrays."""
        self[finding_id]
        return self._index[finding_id]

    def in_section(self, section: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.section == section)

    def to_dict(self) -> dict:
        """A JSON-ready description (for artifact manifests and the dashboard)."""
        return {
            "format_version": self.format_version,
            "sections": dict(self.sections),
            "findings": [
                {
                    "id": f.id,
                    "label": f.label,
                    "section": f.section,
                    "kind": f.kind,
                    "levels": [level.id for level in f.levels],
                    "unit": f.unit,
                    "reference": list(f.reference) if f.reference else None,
                    "hard": list(f.hard) if f.hard else None,
                    "qualitative": {name: list(bounds) for name, bounds in f.qualitative.items()},
                    "only_when": (None if f.only_when is None else
                                  {"otherwise": f.only_when.otherwise, "sex": f.only_when.sex,
                                   "age": list(f.only_when.age) if f.only_when.age else None}),
                }
                for f in self.findings
            ],
        }

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical description: changes whenever the input contract does."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # -- frames <-> arrays --------------------------------------------------------------
    def encode(self, frame: pd.DataFrame, *, ignore: Iterable[str] = ("etiology",)) -> np.ndarray:
        """Encode a frame of findings as a float array (n_cases, n_findings).

        Parameters
        ----------
        frame : pandas.DataFrame
            One column per finding id (absent columns count as not assessed). Binary and
            categorical columns hold level ids (strings or ``Categorical``); numeric
            columns hold numbers in the schema's unit. ``NaN``/``None`` is "not assessed".
        ignore : iterable of str
            Columns that are not findings and are skipped (the label, by default).

        Returns
        -------
        numpy.ndarray
            Level codes for binary/categorical findings, values for numeric ones, ``NaN``
            where not assessed; columns in schema order.

        Raises
        ------
        SchemaError
            Naming every unknown column, unknown level and impossible value.
        """
        ignore = set(ignore)
        unknown = [c for c in frame.columns if c not in self._index and c not in ignore]
        problems = [f"unknown column {c!r}" for c in unknown]
        out = np.full((len(frame), len(self.findings)), np.nan)
        for j, finding in enumerate(self.findings):
            if finding.id not in frame.columns:
                continue
            column, problem = _encode_column(finding, frame[finding.id])
            if problem:
                problems.append(problem)
            else:
                out[:, j] = column
        if problems:
            raise SchemaError("; ".join(problems))
        return out

    def decode(self, codes: np.ndarray, *, index=None) -> pd.DataFrame:
        """Turn an encoded array back into a typed frame (inverse of :meth:`encode`)."""
        import pandas as pd  # here, not at the top: the dashboard's first page needs the schema, not pandas
        codes = np.asarray(codes, dtype=float)
        columns = {}
        for j, finding in enumerate(self.findings):
            if finding.is_numeric:
                columns[finding.id] = codes[:, j]
            else:
                c = codes[:, j]
                ints = np.where(np.isnan(c), -1, c).astype(np.int64)
                columns[finding.id] = pd.Categorical.from_codes(ints, categories=list(finding.level_ids))
        return pd.DataFrame(columns, index=index)

    def coerce(self, frame: pd.DataFrame, *, ignore: Iterable[str] = ("etiology",)) -> pd.DataFrame:
        """Return ``frame`` with finding columns typed as the schema says (after a CSV read).

        Columns not in the frame are added as not assessed; ignored columns are kept.
        """
        typed = self.decode(self.encode(frame, ignore=ignore), index=frame.index)
        for column in ignore:
            if column in frame.columns:
                typed[column] = frame[column]
        return typed


def describe_rows(mask: np.ndarray) -> str:
    """'row 3' / 'rows 3, 8, 12 and 4 more' (1-based positions in the frame)."""
    rows = np.flatnonzero(mask) + 1
    shown = ", ".join(str(r) for r in rows[:3])
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _encode_column(finding: Finding, series: pd.Series) -> tuple[np.ndarray | None, str | None]:
    """Encode one column; on failure return a message naming the column and the rows."""
    import pandas as pd  # see Schema.decode
    if finding.is_numeric:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        bad_text = series.notna().to_numpy() & np.isnan(values)
        if bad_text.any():
            example = series[bad_text].iloc[0]
            return None, f"{finding.id}, {describe_rows(bad_text)}: not a number (e.g. {example!r}); expected {finding.unit}"
        lo, hi = finding.hard
        outside = ~np.isnan(values) & ((values < lo) | (values > hi))
        if outside.any():
            example = values[outside][0]
            return None, (
                f"{finding.id}, {describe_rows(outside)}: outside the plausible range "
                f"{lo:g}–{hi:g} {finding.unit} (e.g. {example:g})"
            )
        return values, None
    levels = list(finding.level_ids)
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == levels:
        codes = series.cat.codes.to_numpy()
        return np.where(codes < 0, np.nan, codes.astype(float)), None
    as_text = series.astype("object").where(series.notna(), None)
    codes = pd.Index(levels).get_indexer(as_text.to_numpy())  # -1: missing or unknown
    unknown = (codes < 0) & series.notna().to_numpy()
    if unknown.any():
        seen = sorted({str(v) for v in as_text[unknown]})[:5]
        return None, f"{finding.id}, {describe_rows(unknown)}: unknown level(s) {', '.join(map(repr, seen))}; expected one of {', '.join(levels)}"
    return np.where(codes < 0, np.nan, codes.astype(float)), None
