"""CDS Hooks 2.0: discovery, the patient-view cards, 412 without prefetch, and the README's
example request and response (which must stay true)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crampdx import DISCLAIMER
from crampdx.render.cds_cards import CARD_SUMMARY_LIMIT
from crampdx.service.app import create_app
from crampdx.service.cds_hooks import PREFETCH, SERVICE_ID

ROOT = Path(__file__).resolve().parents[1]
HOOK_URL = f"/cds-services/{SERVICE_ID}"


def _observation(oid: str, loinc: str, value: float, unit: str, when: str, patient: str = "p1") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def _searchset(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _request(**prefetch_changes) -> dict:
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-01"},
        "observations": _searchset(
            _observation("k1", "2823-3", 2.3, "mmol/L", "2026-11-30T08:00:00Z"),
            _observation("k0", "2823-3", 3.9, "mmol/L", "2026-01-10T08:00:00Z"),
            _observation("x9", "2823-3", 5.0, "mmol/L", "2026-11-30T09:00:00Z", patient="someone-else"),
        ),
        "conditions": _searchset({
            "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]}}),
        "medicationStatements": None,
        "medicationRequests": None,
    }
    prefetch.update(prefetch_changes)
    return {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/example", "patientId": "p1"}, "prefetch": prefetch}


@pytest.fixture(scope="module")
def client(tiny_diagnoser):
    with TestClient(create_app(tiny_diagnoser), raise_server_exceptions=False) as c:
        yield c


def _check_cards(cards: list[dict]) -> None:
    """The CDS Hooks 2.0 card shape: required summary (< 140 characters), indicator and source.label."""
    assert cards
    for card in cards:
        assert isinstance(card["summary"], str) and 0 < len(card["summary"]) < CARD_SUMMARY_LIMIT
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"] and isinstance(card["detail"], str)
        assert set(card) <= {"uuid", "summary", "detail", "indicator", "source", "suggestions",
                             "selectionBehavior", "overrideReasons", "links"}


def test_discovery_names_the_service_and_its_prefetch(client):
    services = client.get("/cds-services").json()["services"]
    (service,) = services
    assert service["id"] == SERVICE_ID and service["hook"] == "patient-view" and service["description"]
    assert service["extension"]["disclaimer"] == DISCLAIMER
    assert service["prefetch"] == PREFETCH
    assert all("{{context.patientId}}" in template for template in service["prefetch"].values())


def test_patient_view_answers_with_red_flag_and_differential_cards(client, tiny_diagnoser):
    response = client.post(HOOK_URL, json=_request())
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    _check_cards(cards)
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert critical and re.search(r"seed:\d", critical[0]["detail"]), critical  # potassium 2.3 mmol/L cites the seed
    info = cards[-1]
    assert info["indicator"] == "info" and info["summary"].startswith("Leg cramps, most likely:")
    assert "Potassium 2.3 mmol/L" in info["detail"]  # the newest potassium, not January's 3.9
    assert "Potassium 3.9" not in info["detail"]
    assert "Observation/x9" in info["detail"]  # another patient's result is reported, never used
    assert DISCLAIMER in info["detail"]
    top = tiny_diagnoser.rank({"potassium": 2.3, "sex": "female", "age": 76, "diabetes": "present"})[0]
    assert top.name in info["summary"] or top.name in info["detail"]


def test_prefetch_left_out_is_412_but_null_means_no_records(client):
    for key in ("patient", "observations"):
        body = _request()
        del body["prefetch"][key]
        response = client.post(HOOK_URL, json=body)
        assert response.status_code == 412, response.text
        assert key in response.json()["error"]
    no_prefetch = _request()
    del no_prefetch["prefetch"]
    assert client.post(HOOK_URL, json=no_prefetch).status_code == 412
    assert client.post(HOOK_URL, json=_request(patient=None)).status_code == 412  # a patient always exists
    # CDS Hooks 2.0: null is "no such records" (a patient with no observations), not a failure
    body = _request(observations=None)
    del body["prefetch"]["conditions"]  # left out: could not be fetched, which the card says
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200, response.text
    detail = response.json()["cards"][-1]["detail"]
    assert "Conditions were not prefetched" in detail and "MedicationStatements were" not in detail  # null: nothing to say


def test_references_are_matched_to_the_patient_in_view(client):
    versioned = _observation("kv", "2823-3", 2.3, "mmol/L", "2026-11-30T08:00:00Z")
    versioned["subject"]["reference"] = "https://ehr.example/fhir/Patient/p1/_history/3"
    group = _observation("kg", "2823-3", 5.9, "mmol/L", "2026-12-01T08:00:00Z")
    group["subject"]["reference"] = "Group/p1"
    response = client.post(HOOK_URL, json=_request(observations=_searchset(versioned, group)))
    cards = response.json()["cards"]
    assert any(c["indicator"] == "critical" for c in cards)  # the versioned reference is this patient's
    assert "Potassium 2.3 mmol/L" in cards[-1]["detail"] and "Observation/kg" in cards[-1]["detail"]
    no_patient = _request()
    del no_patient["context"]["patientId"]
    response = client.post(HOOK_URL, json=no_patient)
    assert response.status_code == 422 and "context.patientId" in response.json()["problems"]
    not_a_patient = _request(patient={"resourceType": "Observation", "id": "p1"})
    response = client.post(HOOK_URL, json=not_a_patient)
    assert response.status_code == 422 and "prefetch.patient" in response.json()["problems"]


def test_a_realistic_prefetch_fits_while_a_v1_body_of_that_size_does_not(client):
    padded = []
    for i in range(200):  # 200 Observations of about 1.5 kB each, as an EHR sends them
        observation = _observation(f"o{i}", "2951-2", 139.0, "mmol/L", f"2026-0{1 + i % 9}-01T08:00:00Z")
        observation["note"] = [{"text": "x" * 1200}]
        padded.append(observation)
    body = _request(observations=_searchset(*padded))
    assert len(json.dumps(body)) > 250_000
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200, response.text[:300]
    too_big = client.post("/v1/assess", json={"findings": {"notes": "x" * 250_000}})
    assert too_big.status_code == 413


def test_the_summary_never_cuts_a_probability():
    from crampdx.model.results import Cause
    from crampdx.render.cds_cards import _summary_of_causes

    causes = [Cause(f"c{i}", "A cause with a very long name indeed, " * 2 + str(i), None, 0.123, 0.0) for i in range(3)]
    summary = _summary_of_causes(causes)
    assert len(summary) < CARD_SUMMARY_LIMIT and summary.endswith("12.3%")


def test_wrong_hook_patient_or_resource_is_422_naming_it(client):
    wrong_hook = {**_request(), "hook": "order-select"}
    response = client.post(HOOK_URL, json=wrong_hook)
    assert response.status_code == 422 and "hook" in response.json()["problems"]
    other = _request(patient={"resourceType": "Patient", "id": "p2", "gender": "male"})
    response = client.post(HOOK_URL, json=other)
    assert response.status_code == 422 and "prefetch.patient" in response.json()["problems"]
    for not_fhir in ("a string", {"resourceType": "NoSuchResource"}, [1, 2]):
        response = client.post(HOOK_URL, json=_request(observations=not_fhir))
        assert response.status_code == 422 and "prefetch.observations" in response.json()["problems"], response.text
        assert "Traceback" not in response.text


@pytest.mark.parametrize("broken, named", [
    ({"resourceType": "Observation", "id": "bad", "status": "not-a-status", "code": {}}, "Observation/bad"),
    ({"resourceType": "Observation", "id": "bad", "status": "final", "code": {}, "effectiveDateTime": "2024-13-45"},
     "Observation/bad, field effectiveDateTime"),
    ({"resourceType": "Observation", "id": "bad", "status": 7, "code": {}}, "Observation/bad, field status"),
    ({"resourceType": "Observation", "id": "bad", "status": "final", "code": {}, "valueQuantity": {"value": "x"}},
     "Observation/bad, field valueQuantity"),
    ({"resourceType": "NoSuchResource", "id": "bad"}, "'NoSuchResource' is not a FHIR R4B resource type"),
])
def test_one_invalid_resource_is_reported_not_fatal(client, broken, named):
    """An EHR's one malformed record must not hide the cards: it is listed as not used, with
    why, and the other records count."""
    response = client.post(HOOK_URL, json=_request(observations=_searchset(
        broken, _observation("k1", "2823-3", 2.3, "mmol/L", "2026-11-30T08:00:00Z"))))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    detail = cards[-1]["detail"]
    assert named in detail.replace("\\", "") and "Potassium 2.3 mmol/L" in detail
    assert any("Potassium 2.3 mmol/L" in card["detail"] for card in cards if card["indicator"] == "critical")


def test_strings_from_the_record_are_shown_literally(client):
    sneaky = _observation("img", "2823-3", 4.0, "![x](https://evil.example/p.png)", "2026-11-30T10:00:00Z")
    body = _request(observations=_searchset(sneaky))
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200, response.text
    detail = response.json()["cards"][-1]["detail"]
    assert "](https://evil" not in detail and "![" not in detail


def _readme_example(name: str) -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name} -->\s*```json\n(.*?)```", text, re.S)
    assert match, f"README.md has no ```json block after <!-- {name} -->"
    return json.loads(match.group(1))


def test_the_readme_example_request_gives_the_readme_example_response_shape(client):
    request, documented = _readme_example("cds-hooks-request"), _readme_example("cds-hooks-response")
    response = client.post(HOOK_URL, json=copy.deepcopy(request))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    _check_cards(cards)
    _check_cards(documented["cards"])
    # The red flags that rules raise from the findings, and the card shape, do not depend on
    # which model answers (the README shows the default model, the test runs the tiny one);
    # a flag raised by the differential itself ("among the three most probable causes") does.
    def red_flags(some):
        return [(c["indicator"], c["summary"], c["source"]["topic"]["code"]) for c in some[:-1]
                if "most probable causes" not in c["detail"]]
    assert red_flags(cards) == red_flags(documented["cards"]) and any(c[0] == "critical" for c in red_flags(cards))
    assert {frozenset(c) for c in cards} == {frozenset(c) for c in documented["cards"]}
    for some in (cards, documented["cards"]):
        assert some[-1]["indicator"] == "info" and some[-1]["summary"].startswith("Leg cramps, most likely:")


def test_the_hook_body_is_read_as_strictly_as_the_v1_routes(client):
    """A key given twice (which one would count?) and NaN are refused with 422 naming the body,
    as on /v1."""
    body = json.dumps(_request())
    for text in (body.replace('"hook": "patient-view",', '"hook": "patient-view", "hook": "order-select",', 1),
                 body.replace('"value": 2.3', '"value": NaN', 1)):
        assert text != body
        response = client.post(HOOK_URL, content=text, headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and "body" in response.json()["problems"], response.text
        assert "Traceback" not in response.text
