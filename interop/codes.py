"""The code table (``interop/fhir_codes.toml``): read, validated against the finding schema.

Every problem is reported at once, each naming the entry and the field
(``fhir_codes.toml: [observations.potassium] units."mmol/L": ...``): every finding exists in
the schema with the kind its entry needs, every unit conversion takes its typical value into
the finding's reference range, every code is well formed, and no code maps to two findings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Mapping

from crampdx.contract import Schema, load_schema
from crampdx.contract.schema_file import read_toml
from crampdx.contract.values import closest_finding, finding_names
from crampdx.errors import UserFacingError

__all__ = ["CODES_PATH", "CodeTable", "Conversion", "FhirCodes", "FhirCodesError", "Target", "load_codes",
           "parse_codes"]

CODES_PATH = Path(__file__).with_name("fhir_codes.toml")
CODES_FORMAT_VERSION = 1
# The shape of each kind of code; ICD-10 and ATC codes are matched as prefixes (E11 takes E11.9).
CODE_SHAPES = {
    "loinc": re.compile(r"^(LA)?\d{1,7}-\d$"),
    "snomed": re.compile(r"^\d{6,18}$"),
    "icd10": re.compile(r"^[A-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?$"),
    "rxnorm": re.compile(r"^\d{1,8}$"),
    "atc": re.compile(r"^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$"),
}
PREFIX_KINDS = frozenset({"icd10", "atc"})
KINDS = (*CODE_SHAPES, "ucum", "interpretation")
CONDITION_KINDS = ("snomed", "icd10")
MEDICATION_KINDS = ("rxnorm", "atc")
QUALITATIVE = ("low", "normal", "high")


class FhirCodesError(ValueError, UserFacingError):
    """The code table is not as expected; the message names every entry and field at fault."""


@dataclass(frozen=True)
class Conversion:
    """A unit's conversion to the schema unit: ``factor × value + offset``."""

    unit: str
    factor: float
    offset: float = 0.0

    def __call__(self, value: float) -> float:
        return round(value * self.factor + self.offset, 6)


@dataclass(frozen=True)
class Target:
    """What a code stands for: a finding, and for a yes/no or categorical finding its level."""

    finding: str
    level: str | None = None


def normalise(kind: str, code: str) -> str:
    """A code as matched: prefix kinds (ICD-10, ATC) without dots, upper case."""
    code = str(code).strip()
    return code.replace(".", "").upper() if kind in PREFIX_KINDS else code


@dataclass(frozen=True)
class CodeTable:
    """Codes -> targets: exact codes by (kind, code), prefix codes longest first."""

    exact: Mapping[tuple[str, str], Target]
    prefixes: tuple[tuple[str, str, Target], ...]

    def lookup(self, kind: str | None, code: str | None) -> Target | None:
        """The target of one code of ``kind``, or None."""
        if kind is None or code is None:
            return None
        code = normalise(kind, code)
        if kind not in PREFIX_KINDS:
            return self.exact.get((kind, code))
        return next((target for k, prefix, target in self.prefixes if k == kind and code.startswith(prefix)), None)


@dataclass(frozen=True)
class FhirCodes:
    """The validated code table; see ``fhir_codes.toml`` for what each part means."""

    systems: Mapping[str, str]
    observations: Mapping[str, str]
    units: Mapping[str, Mapping[str, Conversion]]
    answers: Mapping[str, Mapping[tuple[str, str], str]]
    conditions: CodeTable
    medications: CodeTable
    gender: Mapping[str, str]
    interpretation: Mapping[str, str]

    def kind(self, system: str | None) -> str | None:
        """The kind of code a system URI holds (``"loinc"``), or None for a system not listed."""
        return self.systems.get(system or "")

    def conversion(self, finding_id: str, unit: str | None) -> Conversion | None:
        """The conversion of ``unit`` (a UCUM code or a printed spelling, any case) for a finding."""
        return self.units.get(finding_id, {}).get((unit or "").strip().lower())


def _codes(raw: Any, kind: str, where: str, problems: list[str]) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(code, str) for code in raw):
        problems.append(f"{where}: must be a non-empty list of {kind} codes as strings")
        return []
    bad = [code for code in raw if not CODE_SHAPES[kind].match(code)]
    if bad:
        problems.append(f"{where}: not shaped like {kind} codes: {', '.join(map(repr, bad[:3]))}")
    return [code for code in raw if CODE_SHAPES[kind].match(code)]


def _number(raw: Any) -> bool:
    return isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw)


def _unit(finding, unit: str, raw: Any, where: str, problems: list[str]) -> Conversion | None:
    w = f'{where} units."{unit}"'
    if not isinstance(raw, Mapping):
        problems.append(f"{w}: must be a table {{ factor, offset?, typical, also?, src }}")
        return None
    problems += [f"{w}.{key}: unknown field" for key in raw if key not in ("factor", "offset", "typical", "also", "src")]
    factor, offset, typical = raw.get("factor"), raw.get("offset", 0), raw.get("typical")
    ok = True
    for name, value, positive in (("factor", factor, True), ("offset", offset, False), ("typical", typical, False)):
        if not _number(value) or (positive and value <= 0):
            problems.append(f"{w}.{name}: must be a {'positive ' if positive else ''}finite number")
            ok = False
    if not isinstance(raw.get("src"), str) or not raw["src"].strip():
        problems.append(f"{w}.src: say where the conversion comes from (chemistry: the molar mass, or the equation)")
    also = raw.get("also", [])
    if not isinstance(also, list) or not all(isinstance(a, str) and a.strip() for a in also):
        problems.append(f"{w}.also: must be a list of printed spellings of the unit")
    if not ok:
        return None
    conversion = Conversion(unit, float(factor), float(offset))
    converted, (low, high) = conversion(typical), finding.reference
    if not low <= converted <= high:
        problems.append(f"{w}: a typical {typical:g} {unit} converts to {converted:g} {finding.unit}, outside the "
                        f"reference range {low:g}–{high:g} {finding.unit} (check the factor and offset)")
    return conversion


def _observation(fid: str, raw: Mapping, finding, out: dict, problems: list[str]) -> None:
    where = f"[observations.{fid}]"
    problems += [f"{where} {key}: unknown field" for key in raw if key not in ("loinc", "units", "answers")]
    for code in _codes(raw.get("loinc"), "loinc", f"{where} loinc", problems):
        if code in out["observations"] and out["observations"][code] != fid:
            problems.append(f"{where} loinc: {code} already maps to {out['observations'][code]}")
        out["observations"][code] = fid
    if finding.is_numeric:
        units = raw.get("units")
        if "answers" in raw or not isinstance(units, Mapping) or not units:
            problems.append(f"{where} units: a numeric finding needs a table of units (and no answers)")
            return
        table = {}
        for unit, spec in units.items():
            conversion = _unit(finding, unit, spec, where, problems)
            if conversion is None:
                continue
            for spelling in (unit, *spec.get("also", [])):
                key = str(spelling).strip().lower()
                if key in table and table[key] != conversion:
                    problems.append(f'{where} units."{unit}": the spelling {spelling!r} is already another unit')
                table[key] = conversion
        out["units"][fid] = table
        return
    answers = raw.get("answers")
    if "units" in raw or not isinstance(answers, Mapping) or not answers:
        problems.append(f"{where} answers: a {finding.kind} finding needs a table answers.<system>.\"<code>\" = level")
        return
    table = {}
    for kind, codes in answers.items():
        if kind not in CODE_SHAPES or not isinstance(codes, Mapping):
            problems.append(f"{where} answers.{kind}: expected a code system ({', '.join(CODE_SHAPES)}) "
                            "holding \"<code>\" = level")
            continue
        for code, level in codes.items():
            w = f'{where} answers.{kind}."{code}"'
            if not CODE_SHAPES[kind].match(code):
                problems.append(f"{w}: not a {kind} code")
            elif level not in finding.level_ids:
                problems.append(f"{w}: {level!r} is not a level of {fid} ({', '.join(finding.level_ids)})")
            else:
                table[(kind, normalise(kind, code))] = level
    out["answers"][fid] = table


def _coded_entries(raw: Mapping, kinds: tuple[str, ...], target: Target, where: str, claims: dict,
                   problems: list[str]) -> None:
    for key in raw:
        if key not in kinds:
            problems.append(f"{where} {key}: unknown field; expected {' or '.join(kinds)}")
    if not any(kind in raw for kind in kinds):
        problems.append(f"{where}: no codes; give {' or '.join(kinds)}")
    for kind in kinds:
        if kind in raw:
            for code in _codes(raw[kind], kind, f"{where} {kind}", problems):
                claims.setdefault((kind, normalise(kind, code)), []).append((target, f"{where} {kind}", code))


def _conflicts(claims: dict, problems: list[str]) -> None:
    """No code (nor, for prefix kinds, a code and a longer one it begins) maps to two findings."""
    items = sorted(claims.items())
    for (kind, code), holders in items:
        if len({target.finding for target, _, _ in holders}) > 1:
            problems.append(f"{holders[1][1]}: {holders[1][2]} also maps to {holders[0][0].finding}")
        if kind in PREFIX_KINDS:
            for (other_kind, other), other_holders in items:
                if other_kind == kind and other != code and other.startswith(code) \
                        and other_holders[0][0].finding != holders[0][0].finding:
                    problems.append(f"{other_holders[0][1]}: {other_holders[0][2]} lies within {holders[0][2]}, "
                                    f"which maps to {holders[0][0].finding}")


def _table(claims: dict) -> CodeTable:
    exact = {key: holders[0][0] for key, holders in claims.items() if key[0] not in PREFIX_KINDS}
    prefixes = sorted(((kind, code, holders[0][0]) for (kind, code), holders in claims.items() if kind in PREFIX_KINDS),
                      key=lambda entry: -len(entry[1]))
    return CodeTable(exact, tuple(prefixes))


def _section(document: Mapping, name: str, problems: list[str]) -> Mapping:
    section = document.get(name, {})
    return section if isinstance(section, Mapping) else problems.append(f"[{name}]: must be a table") or {}


def _finding(schema: Schema, fid: str, where: str, kinds: tuple[str, ...], problems: list[str]):
    if fid not in schema:
        close = closest_finding(fid, finding_names(schema))
        problems.append(f"{where}: {fid!r} is not a finding of the schema" + (f" (did you mean {close!r}?)" if close else ""))
        return None
    finding = schema[fid]
    if finding.kind not in kinds:
        problems.append(f"{where}: {fid} is {finding.kind}, and this table maps only to {' or '.join(kinds)} findings")
        return None
    return finding


def _coded_section(document, name, schema, kinds, finding_kinds, problems) -> CodeTable:
    claims: dict = {}
    for fid, raw in _section(document, name, problems).items():
        where = f"[{name}.{fid}]"
        finding = _finding(schema, fid, where, finding_kinds, problems)
        if finding is None or not isinstance(raw, Mapping):
            continue
        if finding.kind == "binary":
            _coded_entries(raw, kinds, Target(fid, "present"), where, claims, problems)
            continue
        levels = raw.get("levels")
        if set(raw) != {"levels"} or not isinstance(levels, Mapping) or not levels:
            problems.append(f"{where}: a categorical finding lists its codes per level ([{name}.{fid}.levels.<level>])")
            continue
        for level, codes in levels.items():
            if level not in finding.level_ids:
                problems.append(f"{where} levels.{level}: not a level of {fid} ({', '.join(finding.level_ids)})")
            elif isinstance(codes, Mapping):
                _coded_entries(codes, kinds, Target(fid, level), f"[{name}.{fid}.levels.{level}]", claims, problems)
    _conflicts(claims, problems)
    return _table(claims)


def parse_codes(document: Mapping, schema: Schema | None = None, *, source: str = "fhir_codes.toml") -> FhirCodes:
    """Validate a parsed code table against the finding schema and build :class:`FhirCodes`.

    Raises
    ------
    FhirCodesError
        Listing every problem, each naming the entry and the field.

    Examples
    --------
    >>> document = {"format_version": 1, "systems": {"http://loinc.org": "loinc"},
    ...             "observations": {"potassium": {"loinc": ["2823-3"], "units": {
    ...                 "mmol/L": {"factor": 10, "typical": 4.2, "src": "a deliberate mistake"}}}}}
    >>> try:
    ...     parse_codes(document)
    ... except FhirCodesError as error:
    ...     print(error)
    fhir_codes.toml: [observations.potassium] units."mmol/L": a typical 4.2 mmol/L converts to 42 mmol/L, outside the reference range 3.5–5 mmol/L (check the factor and offset)
    """
    schema = schema or load_schema()
    if document.get("format_version") != CODES_FORMAT_VERSION:
        raise FhirCodesError(f"{source}: format_version must be {CODES_FORMAT_VERSION} "
                             f"(got {document.get('format_version')!r})")
    problems: list[str] = []
    for key in document:
        if key not in ("format_version", "systems", "patient", "interpretation", "observations", "conditions",
                       "medications"):
            problems.append(f"[{key}]: unknown table")
    systems = dict(_section(document, "systems", problems))
    for uri, kind in systems.items():
        if kind not in KINDS:
            problems.append(f'[systems] "{uri}": {kind!r} is not a kind of code ({", ".join(KINDS)})')
    gender = dict(_section(document, "patient", problems).get("gender", {}))
    sex = schema["sex"].level_ids if "sex" in schema else ()
    for administrative, level in gender.items():
        if level not in sex:
            problems.append(f"[patient] gender.{administrative}: {level!r} is not a level of sex ({', '.join(sex)})")
    interpretation = {}
    for word, codes in _section(document, "interpretation", problems).items():
        if word not in QUALITATIVE or not isinstance(codes, list):
            problems.append(f"[interpretation] {word}: expected low, normal or high = [codes]")
            continue
        interpretation.update({str(code): word for code in codes})
    out: dict = {"observations": {}, "units": {}, "answers": {}}
    for fid, raw in _section(document, "observations", problems).items():
        finding = _finding(schema, fid, f"[observations.{fid}]", ("numeric", "categorical", "binary"), problems)
        if finding is not None and isinstance(raw, Mapping):
            _observation(fid, raw, finding, out, problems)
    conditions = _coded_section(document, "conditions", schema, CONDITION_KINDS, ("binary", "categorical"), problems)
    medications = _coded_section(document, "medications", schema, MEDICATION_KINDS, ("binary",), problems)
    if problems:
        raise FhirCodesError(f"{source}: " + "; ".join(problems))
    return FhirCodes(systems, out["observations"], out["units"], out["answers"], conditions, medications, gender,
                     interpretation)


@cache
def _shipped_codes() -> FhirCodes:
    return parse_codes(read_toml(CODES_PATH, FhirCodesError), load_schema(), source=CODES_PATH.name)


def load_codes(path: str | Path | None = None, schema: Schema | None = None) -> FhirCodes:
    """Load and validate a code table (the shipped one, against the shipped schema, by default; cached).

    Examples
    --------
    >>> codes = load_codes()
    >>> codes.observations["2823-3"], codes.conversion("calcium", "mmol/L")
    ('potassium', Conversion(unit='mmol/L', factor=4.0078, offset=0.0))
    >>> codes.conditions.lookup("icd10", "E11.9")
    Target(finding='diabetes', level='present')
    """
    if path is None and schema is None:
        return _shipped_codes()
    path = Path(path) if path is not None else CODES_PATH
    return parse_codes(read_toml(path, FhirCodesError), schema or load_schema(), source=path.name)
