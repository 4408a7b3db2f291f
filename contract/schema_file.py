"""Reading the finding schema file (``contract/findings.toml``) and validating it.

Every problem is reported at once, each naming the finding and the field
(``findings.potassium.reference: must be [low, high] with low < high``).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Mapping

from crampdx.contract.schema import (BINARY_LEVELS, KINDS, SCHEMA_FORMAT_VERSION, Finding, Level, OnlyWhen, Schema,
                                     SchemaError)

__all__ = ["SCHEMA_PATH", "load_schema", "parse_schema", "read_toml"]

SCHEMA_PATH = Path(__file__).with_name("findings.toml")
_GROUPS = ("demographics", "comorbidities", "medications", "context")


def _need(condition: bool, where: str, message: str, problems: list[str]) -> None:
    if not condition:
        problems.append(f"{where}: {message}")


def _parse_finding(fid: str, raw: Mapping, sections: Mapping[str, str], problems: list[str]) -> Finding | None:
    where = f"findings.{fid}"
    before = len(problems)
    _need(fid.isidentifier() and fid == fid.lower(), where, "id must be snake_case", problems)
    _need(isinstance(raw.get("label"), str) and raw["label"].strip() != "", f"{where}.label", "a non-empty label is required", problems)
    _need(raw.get("section") in sections, f"{where}.section", f"must be one of {', '.join(sections)}", problems)
    kind = raw.get("kind")
    _need(kind in KINDS, f"{where}.kind", f"must be one of {', '.join(KINDS)} (got {kind!r})", problems)
    group = raw.get("group")
    _need(group is None or group in _GROUPS, f"{where}.group", f"must be one of {', '.join(_GROUPS)}", problems)
    known = {"label", "section", "kind", "levels", "unit", "reference", "hard", "decimals", "group", "help", "src",
             "abnormal_outside_reference", "qualitative", "only_when"}
    for key in raw:
        _need(key in known, f"{where}.{key}", "unknown field", problems)
    _need(isinstance(raw.get("abnormal_outside_reference", True), bool), f"{where}.abnormal_outside_reference",
          "must be true or false", problems)
    levels: tuple[Level, ...] = ()
    unit = reference = hard = None
    extra: tuple = ()
    _need(kind == "numeric" or "qualitative" not in raw, f"{where}.qualitative", "only numeric findings have qualitative results", problems)
    if kind == "binary":
        _need("levels" not in raw, f"{where}.levels", "binary findings have the fixed levels absent/present", problems)
        levels = tuple(Level(i, label) for i, label in BINARY_LEVELS)
    elif kind == "categorical":
        raw_levels = raw.get("levels")
        ok = isinstance(raw_levels, Mapping) and len(raw_levels) >= 2
        _need(ok, f"{where}.levels", "a table of at least two level ids with labels is required", problems)
        if ok:
            for lid, label in raw_levels.items():
                _need(lid.isidentifier() and lid == lid.lower(), f"{where}.levels.{lid}", "level id must be snake_case", problems)
                _need(isinstance(label, str) and label != "", f"{where}.levels.{lid}", "label must be a non-empty string", problems)
            levels = tuple(Level(lid, str(label)) for lid, label in raw_levels.items())
    elif kind == "numeric":
        unit = raw.get("unit")
        _need(isinstance(unit, str) and unit != "", f"{where}.unit", "numeric findings need a unit", problems)
        _need(isinstance(raw.get("src"), str), f"{where}.src", "numeric ranges need a source (seed:N or assumption: ...)", problems)
        for key in ("reference", "hard"):
            pair = raw.get(key)
            ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair) and pair[0] < pair[1]
            _need(ok, f"{where}.{key}", "must be [low, high] with low < high", problems)
        if len(problems) == before:
            reference = (float(raw["reference"][0]), float(raw["reference"][1]))
            hard = (float(raw["hard"][0]), float(raw["hard"][1]))
            _need(hard[0] <= reference[0] and reference[1] <= hard[1], f"{where}.reference", "must lie within the hard range", problems)
        extra = _parse_qualitative(raw.get("qualitative", {}), where, hard, problems)
    only_when = _parse_only_when(raw.get("only_when"), where, levels, problems)
    if len(problems) > before:
        return None
    return Finding(
        id=fid,
        label=raw["label"],
        section=raw["section"],
        kind=kind,
        levels=levels,
        unit=unit,
        reference=reference,
        hard=hard,
        decimals=int(raw.get("decimals", 1)),
        group=group,
        help=raw.get("help"),
        abnormal_outside_reference=raw.get("abnormal_outside_reference", True),
        extra_qualitative=extra,
        only_when=only_when,
    )


def _parse_only_when(raw, where: str, levels: tuple[Level, ...], problems: list[str]) -> OnlyWhen | None:
    """``only_when = { otherwise, sex?, age? }``: where the other levels are possible at all."""
    if raw is None:
        return None
    w = f"{where}.only_when"
    if not isinstance(raw, Mapping):
        _need(False, w, "must be a table { otherwise, sex, age, src }", problems)
        return None
    for key in raw:
        _need(key in ("otherwise", "sex", "age", "src"), f"{w}.{key}", "unknown field", problems)
    ids = [level.id for level in levels]
    _need(raw.get("otherwise") in ids, f"{w}.otherwise", f"must be one of {', '.join(ids)}", problems)
    _need(isinstance(raw.get("src"), str), f"{w}.src", "needs a source (seed:N or assumption: ...)", problems)
    age = raw.get("age")
    age_ok = age is None or (isinstance(age, list) and len(age) == 2 and all(isinstance(v, (int, float)) for v in age)
                             and age[0] < age[1])
    _need(age_ok, f"{w}.age", "must be [from, to] in years", problems)
    sex = raw.get("sex")
    _need(sex is None or isinstance(sex, str), f"{w}.sex", "must be a level of sex", problems)
    if raw.get("otherwise") not in ids or not age_ok:
        return None
    return OnlyWhen(raw["otherwise"], sex, (float(age[0]), float(age[1])) if age else None)


_STANDARD_QUALITATIVE = ("low", "normal", "high")


def _parse_qualitative(raw, where: str, hard, problems: list[str]) -> tuple[tuple[str, float, float], ...]:
    """Extra qualitative results of a numeric finding: ``{ name = [low, high] }`` within the hard range."""
    if not isinstance(raw, Mapping):
        _need(False, f"{where}.qualitative", "must be a table of name = [low, high]", problems)
        return ()
    extra = []
    for name, pair in raw.items():
        w = f"{where}.qualitative.{name}"
        _need(name.isidentifier() and name == name.lower() and name not in _STANDARD_QUALITATIVE, w,
              "a snake_case name other than low, normal and high", problems)
        ok = (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)
              and pair[0] < pair[1] and hard is not None and hard[0] <= pair[0] and pair[1] <= hard[1])
        _need(ok, w, "must be [low, high] within the hard range", problems)
        if ok:
            extra.append((name, float(pair[0]), float(pair[1])))
    return tuple(extra)


def parse_schema(document: Mapping, *, source: str = "schema") -> Schema:
    """Validate a parsed schema document and build the :class:`Schema`.

    Raises
    ------
    SchemaError
        Listing every problem, each naming the finding and the field.
    """
    problems: list[str] = []
    version = document.get("format_version")
    if version != SCHEMA_FORMAT_VERSION:
        raise SchemaError(f"{source}: format_version must be {SCHEMA_FORMAT_VERSION} (got {version!r})")
    sections = document.get("sections")
    if not isinstance(sections, Mapping) or not sections:
        raise SchemaError(f"{source}: a [sections] table is required")
    raw_findings = document.get("findings")
    if not isinstance(raw_findings, Mapping) or not raw_findings:
        raise SchemaError(f"{source}: no [findings.*] tables")
    findings = []
    for fid, raw in raw_findings.items():
        finding = _parse_finding(fid, raw, sections, problems)
        if finding is not None:
            findings.append(finding)
    if problems:
        raise SchemaError(f"{source}: " + "; ".join(problems))
    return Schema(findings=tuple(findings), sections=dict(sections), format_version=version)


def read_toml(path: Path, error: type[Exception]) -> dict:
    """A TOML file as a dict; a malformed file raises ``error`` naming the file and the place."""
    with open(path, "rb") as handle:
        try:
            return tomllib.load(handle)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as problem:
            raise error(f"{path.name}: not valid TOML ({problem})") from None


@cache
def load_schema(path: str | Path | None = None) -> Schema:
    """Load and validate the finding schema (the shipped one by default, cached).

    Examples
    --------
    >>> schema = load_schema()
    >>> schema["potassium"].unit, schema["potassium"].reference
    ('mmol/L', (3.5, 5.0))
    >>> list(schema.sections)
    ['history', 'examination', 'laboratory', 'background']
    """
    path = Path(path) if path is not None else SCHEMA_PATH
    return parse_schema(read_toml(path, SchemaError), source=path.name)
