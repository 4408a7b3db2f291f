"""FHIR R4B records -> the findings of one crampdx case, with where each came from.

The code table (``fhir_codes.toml``, :mod:`crampdx.interop.codes`) says which codes stand for
which finding; the handlers in :mod:`crampdx.interop.records` read each record; this module
puts one patient's records together: the newest result per finding wins, every record not
used is reported with its reason, and nothing from the input is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

from crampdx.contract import Schema, load_schema
from crampdx.contract.case import impossible_combinations
from crampdx.interop.codes import FhirCodes, load_codes
from crampdx.interop.reading import FhirError, quote, reference_key, reference_of, resources_from_json
from crampdx.interop.records import HANDLERS, Candidate, Context

__all__ = ["FhirError", "FhirFindings", "UnusedRecord", "describe_provenance", "findings_from_fhir",
           "resources_from_json"]

SUBJECT_TYPES = ("Patient", None)  # a subject reference of another type (Group, Device) is not a patient


@dataclass(frozen=True)
class UnusedRecord:
    """A record (or part of one) that gave no finding, and why, in one plain sentence."""

    reference: str
    reason: str

    def __str__(self) -> str:
        return f"{self.reference}: {self.reason}"


@dataclass(frozen=True)
class FhirFindings:
    """What one patient's FHIR records say in crampdx's terms.

    Attributes
    ----------
    findings : dict
        Finding id -> a value ``validate_case`` accepts (a number in the schema unit, a bound
        such as ``"<3"``, a result in words such as ``"high"``, or a level id), in schema order.
    sources : dict
        Finding id -> the record(s) it came from (``"Observation/k2"``; agreeing conditions or
        medications joined by ", ").
    unused : tuple of UnusedRecord
        Every record, or part of one, that gave no finding, with its reason, in input order.
    """

    findings: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    unused: tuple[UnusedRecord, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready: ``{"sources": {...}, "unused": [{"reference", "reason"}, ...]}``."""
        return {"sources": dict(self.sources),
                "unused": [{"reference": u.reference, "reason": u.reason} for u in self.unused]}


def _the_patient(resources: list, references: list[str]) -> tuple[str | None, str | None]:
    """(id, reference) of the one patient the records are about; FhirError if more than one."""
    ids = {r.id for r in resources if r.get_resource_type() == "Patient"}
    shown = [ref for r, ref in zip(resources, references) if r.get_resource_type() == "Patient"]
    if not ids:
        subjects = {key[1] for r in resources
                    if (key := reference_key(getattr(getattr(r, "subject", None), "reference", None)))
                    and key[0] in SUBJECT_TYPES}
        ids, shown = subjects, [f"Patient/{quote(s, 20)[1:-1]}" for s in sorted(subjects)]
    if len(ids) > 1:
        raise FhirError(f"the records are about {len(ids)} patients ({', '.join(shown[:3])}); "
                        "give the records of one patient")
    pid = next(iter(ids), None)
    return pid, (shown[0] if shown else None)


def _not_about(resource, patient_id: str | None, patient_ref: str | None) -> str | None:
    """Why a record is about someone else, or None."""
    target = getattr(getattr(resource, "subject", None), "reference", None)
    key = reference_key(target)
    if key is None:
        return None
    if key[0] not in SUBJECT_TYPES:
        return f"its subject {quote(target)} is not a patient"
    if patient_id is not None and key[1] != patient_id:
        return f"it is about {quote(target)}, not {patient_ref}"
    return None


def _resolver(resources: list, context_used: set):
    """``resolve(record, reference)``: a Medication contained in the record (``#id``) or among
    the resources (``Medication/id``, an absolute URL, or ``urn:uuid:id``)."""
    medications = {r.id: r for r in resources if r.get_resource_type() == "Medication" and r.id}

    def resolve(record, reference: str):
        if reference.startswith("#"):
            return next((c for c in record.contained or () if c.id == reference[1:]
                         and c.get_resource_type() == "Medication"), None)
        key = reference_key(reference)
        if key is None or key[0] not in ("Medication", None) or key[1] not in medications:
            return None
        context_used.add(key[1])
        return medications[key[1]]

    return resolve


def _choose(candidates: list[Candidate]) -> tuple[dict, dict, list[UnusedRecord]]:
    """Per finding the newest candidate wins (an undated one is oldest; a tie keeps the first);
    conditions and medications that agree with it are sources too."""
    findings, sources, unused = {}, {}, []
    by_finding: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_finding.setdefault(candidate.finding, []).append(candidate)
    for fid, group in by_finding.items():
        winner = max(group, key=lambda c: c.moment)
        findings[fid] = winner.value
        agreeing = [c.reference for c in group if c is winner
                    or (c.kind == winner.kind == "record" and c.value == winner.value)]
        sources[fid] = ", ".join(dict.fromkeys(agreeing))
        for c in group:
            if c.reference in agreeing:
                continue
            noun = "result" if winner.kind == "result" else "record"
            newer = winner.moment > c.moment and winner.date_text
            unused.append(UnusedRecord(c.reference, f"a newer {fid} {noun} ({winner.date_text}) was used" if newer
                                       else f"another {fid} {noun} ({winner.reference}) was used"))
    return findings, sources, unused


def findings_from_fhir(resources: Iterable, *, schema: Schema | None = None, codes: FhirCodes | None = None,
                       today: date | None = None) -> FhirFindings:
    """Read one patient's FHIR R4B records into crampdx findings.

    Parameters
    ----------
    resources : iterable of fhir.resources R4B resources
        As :func:`resources_from_json` returns them (Bundles already opened).
    schema : Schema, optional
        The finding schema (the shipped one by default; a model's own schema for a model).
    codes : FhirCodes, optional
        The code table (the shipped ``fhir_codes.toml`` by default).
    today : datetime.date, optional
        The day ages are computed on (``date.today()`` by default).

    Returns
    -------
    FhirFindings

    Raises
    ------
    FhirError
        The records are about more than one patient.

    Notes
    -----
    Observation: the newest per finding wins; entered-in-error and cancelled never count; a
    unit the table does not list is reported, never guessed; with no value, an interpretation
    gives "low", "normal" or "high". Condition: active, recurrence, relapse -> present,
    refuted -> absent. MedicationStatement: active -> present, not-taken -> absent;
    MedicationRequest: active -> present. Patient: age (whole years) and sex. Records about
    another patient, duplicates, and resources of other types are reported, not used.

    Examples
    --------
    >>> records = resources_from_json({"resourceType": "Bundle", "type": "collection", "entry": [
    ...     {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1958-04-02"}},
    ...     {"resource": {"resourceType": "Observation", "id": "k1", "status": "final",
    ...                   "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
    ...                   "valueQuantity": {"value": 2.6, "system": "http://unitsofmeasure.org", "code": "mmol/L"}}},
    ...     {"resource": {"resourceType": "Observation", "id": "ca", "status": "final",
    ...                   "code": {"coding": [{"system": "http://loinc.org", "code": "2000-8"}]},
    ...                   "valueQuantity": {"value": 2.0, "unit": "mmol/mol"}}}]})
    >>> mapped = findings_from_fhir(records, today=date(2026, 12, 1))
    >>> mapped.findings, mapped.sources["potassium"]
    ({'potassium': 2.6, 'age': 68, 'sex': 'male'}, 'Observation/k1')
    >>> print(*mapped.unused, sep="\\n")
    Observation/ca: unit 'mmol/mol' is not one crampdx converts for calcium
    """
    resources = list(resources)
    schema = schema or load_schema()
    references = [reference_of(r, i) for i, r in enumerate(resources)]
    patient_id, patient_ref = _the_patient(resources, references)
    used_medications: set = set()
    ctx = Context(schema, codes or load_codes(), today or date.today(), _resolver(resources, used_medications))
    candidates: list[Candidate] = []
    unused: list[tuple[int, UnusedRecord]] = []
    seen: set[str] = set()
    for i, (resource, reference) in enumerate(zip(resources, references)):
        kind = resource.get_resource_type()
        if resource.id and reference in seen:
            unused.append((i, UnusedRecord(reference, "the same record appears again; its first copy was read")))
            continue
        seen.add(reference)
        handler = HANDLERS.get(kind)
        if kind == "Medication":
            continue  # used through the statements and requests that name it; reported below if none does
        if handler is None:
            unused.append((i, UnusedRecord(reference, f"crampdx does not read {kind} records")))
            continue
        elsewhere = None if kind == "Patient" else _not_about(resource, patient_id, patient_ref)
        found, reasons = ([], [elsewhere]) if elsewhere else handler(resource, reference, ctx)
        candidates.extend(found)
        unused.extend((i, UnusedRecord(reference, reason)) for reason in reasons)
    for i, resource in enumerate(resources):
        if resource.get_resource_type() == "Medication" and resource.id not in used_medications:
            unused.append((i, UnusedRecord(references[i], "no medication statement or request here names it")))
    findings, sources, lost = _choose(candidates)
    for fid, message in impossible_combinations(findings, schema).items():
        lost += [UnusedRecord(ref, message) for ref in sources[fid].split(", ")]
        del findings[fid], sources[fid]
    order = {ref: i for i, ref in reversed(list(enumerate(references)))}
    unused += [(order.get(record.reference, len(resources)), record) for record in lost]
    unused.sort(key=lambda pair: pair[0])
    return FhirFindings(findings={fid: findings[fid] for fid in schema.ids if fid in findings},
                        sources={fid: sources[fid] for fid in schema.ids if fid in sources},
                        unused=tuple(record for _, record in unused))


def describe_provenance(mapped: FhirFindings, schema: Schema | None = None) -> list[str]:
    """Lines for a reader: where each finding came from, then every record not used and why.

    Examples
    --------
    >>> mapped = FhirFindings({"potassium": 2.6}, {"potassium": "Observation/k1"},
    ...                       (UnusedRecord("Observation/x", "entered in error"),))
    >>> print(*describe_provenance(mapped), sep="\\n")
    Read from FHIR:
      Potassium  2.6 mmol/L  <- Observation/k1
    Not used (1):
      Observation/x: entered in error
    """
    schema = schema or load_schema()
    lines = ["Read from FHIR:" if mapped.findings else "Read from FHIR: nothing crampdx uses"]
    labels = {fid: schema[fid].label if fid in schema else fid for fid in mapped.findings}
    width = max((len(label) for label in labels.values()), default=0)
    for fid, value in mapped.findings.items():
        numeric = fid in schema and schema[fid].is_numeric and isinstance(value, (int, float))
        shown = f"{value:g} {schema[fid].unit}" if numeric else str(value)
        lines.append(f"  {labels[fid]:<{width}}  {shown}  <- {mapped.sources[fid]}")
    if mapped.unused:
        lines.append(f"Not used ({len(mapped.unused)}):")
        lines += [f"  {record}" for record in mapped.unused]
    return lines
