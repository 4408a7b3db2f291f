"""One handler per FHIR resource type: a record -> the findings it states, or why it states none.

Each handler takes a parsed resource, its reference and the :class:`Context`, and returns
``(candidates, reasons)``: the finding values the record gives (each dated, so the newest
can win) and, for a record not used, one plain sentence per reason. The rules (which
statuses count, how a value is converted) are documented on each handler.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

from crampdx.contract import Schema
from crampdx.contract.values import parse_level, parse_number
from crampdx.interop.codes import FhirCodes
from crampdx.interop.reading import quote

__all__ = ["Candidate", "Context", "HANDLERS", "age_on", "describe_codes", "when"]

RESULT_STATUSES = ("final", "amended", "corrected", "preliminary")
ACTIVE_CONDITION = ("active", "recurrence", "relapse")
UNCONFIRMED = ("unconfirmed", "provisional", "differential")
STATEMENT_LEVELS = {"active": "present", "not-taken": "absent"}  # MedicationStatement.status -> level
CENSORING = ("<", "<=", ">", ">=")
VALUE_FIELDS = ("valueBoolean", "valueCodeableConcept", "valueDateTime", "valueInteger", "valuePeriod",
                "valueQuantity", "valueRange", "valueRatio", "valueSampledData", "valueString", "valueTime")
UNDATED = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Candidate:
    """One value a record gives for a finding. ``kind`` is ``"result"`` (an Observation: the
    newest alone counts) or ``"record"`` (a condition or medication: agreeing records all count)."""

    finding: str
    value: Any
    reference: str
    kind: str
    moment: datetime = UNDATED
    date_text: str | None = None


@dataclass(frozen=True)
class Context:
    """What every handler needs: the schema, the code table, today, and the medication
    resolver (``resolve(record, reference) -> Medication or None``)."""

    schema: Schema
    codes: FhirCodes
    today: date
    resolve: Callable[[Any, str], Any]
    referenced: set = field(default_factory=set)


def when(value: Any) -> tuple[datetime, str | None]:
    """A FHIR date, dateTime or instant as (moment in UTC for ordering, the date as written).

    Partial dates (``2024``, ``2024-05``) count from their first day; a time without a zone
    counts as UTC.

    Examples
    --------
    >>> when("2024-05")[1], when(date(2026, 11, 30))[1], when(None)[1]
    ('2024-05', '2026-11-30', None)
    """
    if value is None:
        return UNDATED, None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc), value.date().isoformat()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc), value.isoformat()
    parts = [int(part) for part in str(value)[:10].split("-") if part.isdigit()] + [1, 1]
    return datetime(parts[0], parts[1], parts[2], tzinfo=timezone.utc), str(value)[:10]


def age_on(birth: Any, today: date) -> int:
    """Age in whole years on ``today``; a partial birth date (``1958``, ``1958-03``) counts from
    its last possible day, so the age is never overstated.

    Examples
    --------
    >>> age_on(date(1958, 3, 4), date(2026, 3, 3)), age_on("1958", date(2026, 6, 1))
    (67, 67)
    """
    if isinstance(birth, date):
        year, month, day = birth.year, birth.month, birth.day
    else:
        parts = [int(part) for part in str(birth).split("-")]
        year, month = parts[0], parts[1] if len(parts) > 1 else 12
        day = parts[2] if len(parts) > 2 else calendar.monthrange(year, month)[1]
    return today.year - year - ((today.month, today.day) < (month, day))


def _codings(concept) -> list:
    return list(getattr(concept, "coding", None) or ())


def describe_codes(concept) -> str:
    """The first code of a CodeableConcept with its display, briefly: ``1234-5 'Lipase'``."""
    for coding in _codings(concept):
        if coding.code:
            return f"{quote(coding.code, 20)[1:-1]} {quote(coding.display)}" if coding.display \
                else quote(coding.code, 20)[1:-1]
    text = getattr(concept, "text", None)
    return quote(text) if text else "no code at all"


def _status_code(concept) -> str | None:
    return next((coding.code for coding in _codings(concept) if coding.code), None)


def _checked(finding, raw) -> tuple[Any, str | None]:
    """The value as validate_case will read it, or its problem (checked here so one bad value
    is reported and the rest of the record still counts)."""
    if finding.is_numeric:
        value, _, problem = parse_number(finding, raw)
    else:
        value, problem = parse_level(finding, raw)
    return raw, (f"{finding.id}: {problem}" if problem else None)


def _quantity(resource, finding, codes: FhirCodes) -> tuple[Any, str | None]:
    """A numeric result in the schema unit: converted by the unit's listed factor, never guessed;
    a censored value (``<``, ``>``) stays censored."""
    q = resource.valueQuantity
    if q.value is None:
        return None, "a quantity without a value"
    if q.comparator and q.comparator not in CENSORING:
        return None, f"comparator {quote(q.comparator, 8)} cannot be read as a bound"
    conversion = None
    if q.code and codes.kind(q.system) in (None, "ucum"):
        conversion = codes.conversion(finding.id, q.code)
    conversion = conversion or codes.conversion(finding.id, q.unit)
    if conversion is None:
        given = q.code or q.unit
        if not given:
            return None, f"a {finding.id} value without a unit; crampdx never guesses the unit"
        return None, f"unit {quote(given, 20)} is not one crampdx converts for {finding.id}"
    value = conversion(float(q.value))
    return (f"{q.comparator}{value:g}" if q.comparator else value), None


def _interpretation(resource, codes: FhirCodes) -> str | None:
    for concept in resource.interpretation or ():
        for coding in _codings(concept):
            if codes.kind(coding.system) in (None, "interpretation") and coding.code in codes.interpretation:
                return codes.interpretation[coding.code]
    return None


def observation(resource, reference: str, ctx: Context):
    """A result with a LOINC code from the table. Statuses final, amended, corrected and
    preliminary count; entered-in-error and cancelled never do. A number is converted to the
    schema unit; with no value, an interpretation (L/LL/LU, N, H/HH/HU) gives the result in words."""
    status = resource.status
    if status in ("entered-in-error", "cancelled"):
        return [], ["entered in error" if status == "entered-in-error" else "cancelled"]
    if status not in RESULT_STATUSES:
        return [], [f"status {quote(status, 20)} is not a result (final, amended, corrected or preliminary)"]
    fid = next((ctx.codes.observations[c.code] for c in _codings(resource.code)
                if ctx.codes.kind(c.system) == "loinc" and c.code in ctx.codes.observations), None)
    if fid is None:
        return [], [f"no LOINC code crampdx knows ({describe_codes(resource.code)})"]
    if fid not in ctx.schema:
        return [], [f"{fid} is not a finding of this model"]
    finding = ctx.schema[fid]
    if finding.is_numeric and resource.valueQuantity is not None:
        raw, problem = _quantity(resource, finding, ctx.codes)
    elif not finding.is_numeric and resource.valueCodeableConcept is not None:
        answers = ctx.codes.answers.get(fid, {})
        raw = next((answers[key] for c in _codings(resource.valueCodeableConcept)
                    if (key := (ctx.codes.kind(c.system), c.code)) in answers), None)
        problem = None if raw else (f"answer {describe_codes(resource.valueCodeableConcept)} is not one crampdx "
                                    f"maps for {fid}")
    elif any(getattr(resource, name) is not None for name in VALUE_FIELDS):
        kind = next(name for name in VALUE_FIELDS if getattr(resource, name) is not None)[5:]
        raw, problem = None, f"a {kind} value, which crampdx does not read for {fid}"
    else:
        raw = _interpretation(resource, ctx.codes) if finding.is_numeric else None
        problem = None if raw else "no value or interpretation"
    if problem is None:
        raw, problem = _checked(finding, raw)
    if problem:
        return [], [problem]
    effective = resource.effectiveDateTime or resource.effectiveInstant or resource.issued
    if effective is None and resource.effectivePeriod is not None:
        effective = resource.effectivePeriod.end or resource.effectivePeriod.start
    return [Candidate(fid, raw, reference, "result", *when(effective))], []


def condition(resource, reference: str, ctx: Context):
    """A condition coded in SNOMED CT or ICD-10: clinical status active, recurrence or relapse
    -> its level (present); verification refuted -> absent; entered in error, unconfirmed,
    resolved, inactive or without a clinical status -> not used."""
    verification = _status_code(resource.verificationStatus)
    if verification == "entered-in-error":
        return [], ["entered in error"]
    target = next((t for c in _codings(resource.code)
                   if (t := ctx.codes.conditions.lookup(ctx.codes.kind(c.system), c.code))), None)
    if target is None:
        return [], [f"no SNOMED CT or ICD-10 code crampdx knows ({describe_codes(resource.code)})"]
    if target.finding not in ctx.schema:
        return [], [f"{target.finding} is not a finding of this model"]
    level = target.level
    if verification == "refuted":
        if ctx.schema[target.finding].kind != "binary":
            return [], [f"refuted, and {target.finding} has no level 'absent'"]
        level = "absent"
    elif verification in UNCONFIRMED:
        return [], [f"not confirmed (verification status {verification})"]
    else:
        clinical = _status_code(resource.clinicalStatus)
        if clinical is None:
            return [], ["no clinical status, so it is not known to be current"]
        if clinical not in ACTIVE_CONDITION:
            return [], [f"clinical status {quote(clinical, 20)}: only active conditions are read"]
    recorded = resource.recordedDate or resource.onsetDateTime or (resource.onsetPeriod and resource.onsetPeriod.start)
    return [Candidate(target.finding, level, reference, "record", *when(recorded))], []


def _drug(resource, reference: str, ctx: Context, level: str, dated):
    """The findings a drug maps to: from medicationCodeableConcept, or the Medication a
    medicationReference names (its code and its ingredients' codes)."""
    codings, concept = _codings(resource.medicationCodeableConcept), resource.medicationCodeableConcept
    if resource.medicationReference is not None:
        target = resource.medicationReference.reference or ""
        medication = ctx.resolve(resource, target)
        if medication is None:
            return [], [f"its medication {quote(target) if target else '(no reference)'} is not among the records, "
                        "so the drug is not known"]
        concept = medication.code
        codings = _codings(medication.code) + [c for item in medication.ingredient or ()
                                               for c in _codings(item.itemCodeableConcept)]
    findings = dict.fromkeys(t.finding for c in codings
                             if (t := ctx.codes.medications.lookup(ctx.codes.kind(c.system), c.code)))
    if not findings:
        return [], [f"no RxNorm or ATC code crampdx knows ({describe_codes(concept)})"]
    unknown = [fid for fid in findings if fid not in ctx.schema]
    moment = when(dated)
    return ([Candidate(fid, level, reference, "record", *moment) for fid in findings if fid in ctx.schema],
            [f"{fid} is not a finding of this model" for fid in unknown])


def medication_statement(resource, reference: str, ctx: Context):
    """Status active -> the drug's finding present; not-taken -> absent; entered in error,
    intended, on-hold, completed, stopped and unknown -> not used (no current exposure known)."""
    if resource.status == "entered-in-error":
        return [], ["entered in error"]
    level = STATEMENT_LEVELS.get(resource.status)
    if level is None:
        return [], [f"status {quote(resource.status, 20)}: only active and not-taken statements are read"]
    period = resource.effectivePeriod
    dated = resource.effectiveDateTime or (period and (period.end or period.start)) or resource.dateAsserted
    return _drug(resource, reference, ctx, level, dated)


def medication_request(resource, reference: str, ctx: Context):
    """Status active (and not do-not-perform) -> the drug's finding present; anything else
    (entered in error, draft, on-hold, completed, stopped, cancelled) -> not used."""
    if resource.status == "entered-in-error":
        return [], ["entered in error"]
    if resource.status != "active":
        return [], [f"status {quote(resource.status, 20)}: only active requests are read"]
    if resource.doNotPerform:
        return [], ["a do-not-perform request"]
    return _drug(resource, reference, ctx, "present", resource.authoredOn)


def patient(resource, reference: str, ctx: Context):
    """Age from birthDate on ``ctx.today`` (whole years, never negative); sex from gender
    (female, male; other and unknown are reported)."""
    found, reasons = [], []
    gender = resource.gender
    if gender is not None:
        if gender in ctx.codes.gender and "sex" in ctx.schema:
            found.append(Candidate("sex", ctx.codes.gender[gender], reference, "record"))
        else:
            reasons.append(f"administrative gender {quote(gender, 20)} does not give the sex crampdx uses "
                           f"({' or '.join(ctx.codes.gender)})")
    if resource.birthDate is not None and "age" in ctx.schema:
        age = age_on(resource.birthDate, ctx.today)
        raw, problem = _checked(ctx.schema["age"], age)
        if age < 0:
            reasons.append(f"birth date {when(resource.birthDate)[1]} is after today ({ctx.today.isoformat()})")
        elif problem:
            reasons.append(problem)
        else:
            found.append(Candidate("age", raw, reference, "record"))
    return found, reasons


HANDLERS = {
    "Patient": patient,
    "Observation": observation,
    "Condition": condition,
    "MedicationStatement": medication_statement,
    "MedicationRequest": medication_request,
}
