"""CDS Hooks 2.0: discovery and the ``patient-view`` service that answers with cards.

The EHR calls ``POST /cds-services/crampdx-leg-cramps`` with the patient, their recent
Observations, Conditions and medications already fetched (``prefetch``); crampdx never
calls back into the EHR's FHIR server. The records are read into a case by the declarative
mapping of :mod:`crampdx.interop`, the case is assessed, and the answer is cards
(:func:`crampdx.render.cds_cards.assessment_cards`). Without the patient or the observations
the service answers 412, as the specification says for prefetch it cannot do without.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from crampdx import DISCLAIMER
from crampdx.contract import CaseError, validate_what_is_valid
from crampdx.interop.fhir import FhirError, findings_from_fhir
from crampdx.interop.reading import readable_resources
from crampdx.render.cds_cards import CAUSES_ON_CARD, assessment_cards
from crampdx.service.api import compute
from crampdx.service.guards import StrictJSONRoute, error_response

__all__ = ["SERVICE_ID", "discovery_document", "router"]

SERVICE_ID = "crampdx-leg-cramps"
HOOK = "patient-view"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&_sort=-date&_count=200",
    "conditions": "Condition?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}&status=active",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}&status=active",
}
REQUIRED_PREFETCH = ("patient", "observations")
_WITHOUT = {
    "conditions": "Conditions were not prefetched, so no background diagnosis is assessed",
    "medicationStatements": "MedicationStatements were not prefetched, so medications may be missing",
    "medicationRequests": "MedicationRequests were not prefetched, so medications may be missing",
}

# The body is read as strictly as /v1's (no key given twice, no NaN, nesting checked first).
router = APIRouter(tags=["CDS Hooks"], route_class=StrictJSONRoute)


def discovery_document() -> dict:
    """The CDS Hooks discovery response: one ``patient-view`` service with its prefetch."""
    return {"services": [{
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": "crampdx: leg cramps differential",
        "description": ("Ranks the causes of leg cramps from the patient's laboratory results, conditions and "
                        "medications, with red flags and the findings behind each cause. Decision support trained "
                        "on synthetic cases; not validated on patients."),
        "prefetch": dict(PREFETCH),
        "usageRequirements": "Open for a patient who reports leg cramps; the history and examination findings "
                             "the record does not hold can be added in the crampdx dashboard.",
        "extension": {"disclaimer": DISCLAIMER},  # CDS Hooks 2.0: extensions ride in "extension"
    }]}


class HookRequest(BaseModel):
    """A CDS Hooks 2.0 request (fields crampdx does not use are accepted and ignored)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "hook": HOOK, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": "p1"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1956-04-02"},
                     "observations": {"resourceType": "Bundle", "type": "searchset", "entry": []}}}]})
    hook: str
    hookInstance: str
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = Field(None, description="the resources named in discovery, by key")


def _patient_reference(resource: Any) -> str | None:
    for attribute in ("subject", "patient"):
        reference = getattr(getattr(resource, attribute, None), "reference", None)
        if reference:
            return reference
    return None


def _is_patient(reference: str, patient_id: str) -> bool:
    """Whether a FHIR reference (relative, absolute or versioned) points to ``Patient/<patient_id>``.

    Examples
    --------
    >>> [_is_patient(r, "p1") for r in ("Patient/p1", "https://ehr.example/fhir/Patient/p1/_history/3",
    ...                                  "Group/p1", "Patient/p10")]
    [True, True, False, False]
    """
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] == patient_id


def _read_prefetch(prefetch: dict[str, Any], patient_id: str) -> tuple[list, list[str]]:
    """The usable resources of the prefetch, and a sentence for each one left out.

    A key the EHR left out could not be fetched (said on the card); ``null`` means the
    patient has no such records (CDS Hooks 2.0), so there is nothing to read or to say.
    """
    resources, left_out = [], []
    for key in PREFETCH:
        if key not in prefetch:
            if key in _WITHOUT:
                left_out.append(_WITHOUT[key])
            continue
        if prefetch[key] is None:
            continue
        try:  # a record that is not valid R4B is left out and said; the others still count
            found, invalid = readable_resources(prefetch[key])
        except FhirError as error:
            raise CaseError({f"prefetch.{key}": str(error)}) from None
        left_out += invalid
        for resource in found:
            reference = _patient_reference(resource)
            if reference and not _is_patient(reference, patient_id):
                left_out.append(f"{resource.get_resource_type()}/{resource.id}: belongs to {reference[:80]}, "
                                f"not to this patient")
            else:
                resources.append(resource)
    return resources, left_out


@router.get("/cds-services", summary="CDS Hooks discovery")
async def discovery() -> dict:
    return discovery_document()


@router.post(f"/cds-services/{SERVICE_ID}", summary="CDS Hooks patient-view: cards for leg cramps",
             responses={412: {"description": "the patient or observations prefetch is missing"},
                        422: {"description": "the request or a prefetched resource is not valid"}})
async def patient_view(body: HookRequest, request: Request):
    """Red flags as `critical`/`warning` cards citing the seed, and one `info` card with the top
    causes, their probabilities, the findings behind each and what could not be used."""
    if body.hook != HOOK:
        raise CaseError({"hook": f"this service answers the {HOOK} hook, not {body.hook[:80]!r}"})
    patient_id = body.context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise CaseError({"context.patientId": "is required by the patient-view hook (the id of the patient in view)"})
    prefetch = body.prefetch or {}
    # A key left out could not be fetched; null means "no such records", which for the
    # observations is an answer and for the patient is impossible.
    missing = [key for key in REQUIRED_PREFETCH if key not in prefetch or (key == "patient" and prefetch[key] is None)]
    if missing:
        return error_response(412, f"prefetch {', '.join(missing)} missing: crampdx does not query the FHIR server "
                                   "itself, so send the prefetch named in GET /cds-services")
    patient = prefetch["patient"]
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise CaseError({"prefetch.patient": "must be the Patient resource of the patient in view"})
    if patient.get("id") not in (None, patient_id):
        raise CaseError({"prefetch.patient": f"is Patient/{str(patient.get('id'))[:80]} but context.patientId is "
                                             f"{patient_id[:80]}; send the record of the patient in view"})
    # Reading a prefetch of up to 10 MB of records takes long enough to stall the event loop:
    # in the slow lane, like the /v1 routes' long requests.
    return await compute(request, lambda: _cards(prefetch, patient_id, request.app.state.diagnoser), slow=True)


def _cards(prefetch: dict[str, Any], patient_id: str, diagnoser) -> dict:
    """The hook's answer for a prefetch already checked for the patient and observations."""
    resources, left_out = _read_prefetch(prefetch, patient_id)
    try:
        mapped = findings_from_fhir(resources, schema=diagnoser.schema, today=date.today())
    except FhirError as error:  # e.g. records of two patients that no reference told apart
        raise CaseError({"prefetch": str(error)}) from None
    case, problems = validate_what_is_valid(mapped.findings, schema=diagnoser.schema)
    assessment = diagnoser.assess(case, top=CAUSES_ON_CARD, explain=CAUSES_ON_CARD, next_findings=0, not_used=problems)
    unused = [f"{record.reference}: {record.reason}" for record in mapped.unused] + left_out
    return {"cards": assessment_cards(assessment, unused)}
