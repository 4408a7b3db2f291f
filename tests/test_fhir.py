"""FHIR R4B records -> findings: the code table and its validator, the engine, the command line."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import date
from pathlib import Path

import pytest

from crampdx.cli.main import main
from crampdx.contract import validate_case
from crampdx.interop.codes import CODES_PATH, FhirCodesError, load_codes, parse_codes
from crampdx.interop.fhir import FhirError, findings_from_fhir, resources_from_json
from crampdx.interop.reading import readable_resources, reference_of

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
BUNDLE = FIXTURES / "bundle.json"
TODAY = date(2026, 12, 1)
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
# Molar masses (g/mol, IUPAC standard atomic weights and the molecules' formulas)
CA, MG, GLUCOSE, CREATININE, T4 = 40.078, 24.305, 180.156, 113.12, 776.87


@pytest.fixture(scope="module")
def bundle() -> dict:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def mapped(bundle):
    return findings_from_fhir(resources_from_json(bundle), today=TODAY)


def reasons(mapped) -> dict[str, str]:
    return {record.reference: record.reason for record in mapped.unused}


def lab(code: str, value: float, unit: str, *, rid: str = "x", when: str = "2026-11-30", **extra) -> dict:
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return {"resourceType": "Observation", "id": rid, "status": "final", "effectiveDateTime": when,
            "code": {"coding": [{"system": LOINC, "code": code}]}, "valueQuantity": quantity, **extra}


def read(*resources: dict, today: date = TODAY):
    return findings_from_fhir(resources_from_json(list(resources)), today=today)


# ------------------------------------------------------------------------------ code table

def test_every_shipped_entry_passes_the_validator(schema):
    document = tomllib.loads(CODES_PATH.read_text(encoding="utf-8"))
    codes = load_codes()
    numeric = {fid for fid, entry in document["observations"].items() if "units" in entry}
    assert numeric == set(codes.units)  # every numeric entry was read, each against the schema
    for fid, entry in document["observations"].items():
        assert schema[fid].kind == ("numeric" if "units" in entry else "categorical")
        for unit, spec in entry.get("units", {}).items():
            converted = codes.conversion(fid, unit)(spec["typical"])
            low, high = schema[fid].reference
            assert low <= converted <= high, (fid, unit)
    assert {t.finding for t in codes.medications.exact.values()} | {t.finding for *_, t in codes.medications.prefixes} \
        == set(document["medications"])


def test_the_broken_fixture_names_each_entry_and_field():
    with pytest.raises(FhirCodesError) as raised:
        load_codes(FIXTURES / "broken_codes.toml")
    message = str(raised.value)
    assert message.startswith("broken_codes.toml: ")
    for expected in (
        '[systems] "http://example.org/codes": \'homegrown\' is not a kind of code',
        '[observations.calcium] units."mmol/L": a typical 2.35 mmol/L converts to 94.1833 mg/dL, outside the reference',
        '[observations.calcium] units."mg/dL".src:',
        "[observations.potasium]: 'potasium' is not a finding of the schema (did you mean 'potassium'?)",
        "[observations.sodium] loinc: not shaped like loinc codes: '29512'",
        "[observations.sodium] loinc: 17861-6 already maps to calcium",
        "[conditions.potassium]: potassium is numeric",
        "[conditions.hypertension] icd10: E11.9 lies within E11, which maps to diabetes",
        "[medications.med_metformin] rxnorm: 4603 also maps to med_diuretic",
    ):
        assert expected in message


def test_a_wrong_level_or_kind_in_an_otherwise_good_table_is_named():
    document = tomllib.loads(CODES_PATH.read_text(encoding="utf-8"))
    broken = copy.deepcopy(document)
    broken["observations"]["smoking"]["answers"]["snomed"]["8517006"] = "quit"
    broken["medications"]["sex"] = {"atc": ["C03"]}
    broken["observations"]["hba1c"]["units"]["mmol/mol"]["offset"] = 21.52
    with pytest.raises(FhirCodesError) as raised:
        parse_codes(broken)
    message = str(raised.value)
    assert "[observations.smoking] answers.snomed.\"8517006\": 'quit' is not a level of smoking" in message
    assert "[medications.sex]: sex is categorical" in message
    assert '[observations.hba1c] units."mmol/mol": a typical 33 mmol/mol converts to' in message
    parse_codes(document)  # the untouched copy is valid


# -------------------------------------------------------------------------------- engine

def test_the_example_bundle_maps_with_conversions_from_molar_masses(mapped):
    findings = mapped.findings
    assert findings["calcium"] == pytest.approx(2.0 * CA / 10, rel=1e-6)  # mmol/L -> mg/dL: 8.0156
    assert findings["magnesium"] == pytest.approx(0.5 * MG / 10, rel=1e-6)  # 1.21525
    assert findings["potassium"] == 2.6 and findings["tsh"] == "high"
    assert findings["age"] == 68 and findings["sex"] == "female" and findings["smoking"] == "former"
    for fid in ("diabetes", "hypertension", "med_diuretic", "med_proton_pump_inhibitor", "med_antidepressant"):
        assert findings[fid] == "present", fid
    assert mapped.sources["diabetes"] == "Condition/dm" and mapped.sources["hypertension"] == "Condition/htn"
    assert mapped.sources["med_diuretic"] == "MedicationStatement/furosemide"
    assert mapped.sources["med_antidepressant"] == "MedicationRequest/sertraline-rx"  # via Medication/sertraline
    assert "known_thyroid_disease" not in findings and "sodium" not in findings
    case = validate_case(findings)
    assert case.flags["potassium"] == "low" and case.intervals["tsh"].text == "high"


def test_newest_result_wins_and_entered_in_error_never_counts(mapped):
    assert mapped.sources["potassium"] == "Observation/k-new"
    why = reasons(mapped)
    assert why["Observation/k-old"] == "a newer potassium result (2026-11-30) was used"
    assert why["Observation/k-error"] == "entered in error"  # dated 2026-12-01, newer, and still not used


def test_an_unknown_unit_is_reported_not_guessed(mapped):
    assert reasons(mapped)["Observation/na"] == "unit 'mg/L' is not one crampdx converts for sodium"
    no_unit = lab("2823-3", 4.1, "")
    no_unit["valueQuantity"] = {"value": 4.1}
    assert "never guesses the unit" in reasons(read(no_unit))["Observation/x"]


def test_every_record_not_used_is_reported_with_its_reason(mapped):
    why = reasons(mapped)
    assert why["Observation/lipase"] == "no LOINC code crampdx knows (3040-3 'Lipase')"
    assert why["Condition/hypothyroid-old"].startswith("clinical status 'resolved'")
    assert why["Encounter/visit"] == "crampdx does not read Encounter records"
    assert "Medication/sertraline" not in why  # used through the request that names it
    references = {s for source in mapped.sources.values() for s in source.split(", ")}
    assert not references & set(why)


@pytest.mark.parametrize("code, value, unit, finding, expected", [
    ("2345-7", 5.0, "mmol/L", "glucose", 5.0 * GLUCOSE / 10),
    ("14682-9", 80, "umol/L", "creatinine", 80 * CREATININE / 10_000),
    ("14920-3", 15, "pmol/L", "free_t4", 15 * T4 / 10_000),
    ("1994-3", 1.2, "mmol/L", "ionized_calcium", 1.2 * CA / 10),
    ("17861-6", 4.7, "meq/L", "calcium", 4.7 / 2 * CA / 10),  # divalent: 1 mEq = 0.5 mmol
    ("59261-8", 48, "mmol/mol", "hba1c", 0.09148 * 48 + 2.152),  # IFCC-NGSP master equation
    ("718-7", 135, "g/L", "hemoglobin", 13.5),
])
def test_unit_conversions(code, value, unit, finding, expected):
    assert read(lab(code, value, unit)).findings[finding] == pytest.approx(expected, rel=1e-4)


def test_a_censored_value_stays_a_bound_and_validates():
    mapped = read(lab("14635-7", 10, "nmol/L", valueQuantity={"value": 10, "comparator": "<", "code": "nmol/L",
                                                                  "system": UCUM}))
    assert mapped.findings["vitamin_d"] == "<4.0064"
    assert validate_case(mapped.findings).intervals["vitamin_d"].high == pytest.approx(4.0064)


def test_a_value_outside_the_plausible_range_is_reported_and_the_rest_still_counts():
    mapped = read(lab("2823-3", 25, "mmol/L", rid="k"), lab("2951-2", 131, "mmol/L", rid="na"))
    assert mapped.findings == {"sodium": 131.0}
    assert "outside the plausible range" in reasons(mapped)["Observation/k"]


def test_conditions_by_status():
    def condition(rid, clinical=None, verification=None, code="E11.9"):
        resource = {"resourceType": "Condition", "id": rid, "subject": {"reference": "Patient/p"},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]}}
        if clinical:
            resource["clinicalStatus"] = {"coding": [{"code": clinical}]}
        if verification:
            resource["verificationStatus"] = {"coding": [{"code": verification}]}
        return resource
    assert read(condition("a", "relapse")).findings == {"diabetes": "present"}
    assert read(condition("a", verification="refuted")).findings == {"diabetes": "absent"}
    for status, verification, reason in (("resolved", None, "clinical status 'resolved'"),
                                         ("active", "entered-in-error", "entered in error"),
                                         ("active", "provisional", "not confirmed"),
                                         (None, None, "no clinical status")):
        mapped = read(condition("a", status, verification))
        assert mapped.findings == {} and reason in reasons(mapped)["Condition/a"]
    pregnant = read({"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1994-05-01"},
                    condition("t", "active", code="Z34.02"))
    assert pregnant.findings["pregnancy"] == "trimester_2"


def test_medications_by_status_and_reference():
    rxnorm = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "4603"}]}
    statement = {"resourceType": "MedicationStatement", "id": "s", "status": "not-taken",
                 "medicationCodeableConcept": rxnorm, "subject": {"reference": "Patient/p"}}
    assert read(statement).findings == {"med_diuretic": "absent"}
    assert "only active and not-taken" in reasons(read({**statement, "status": "completed"}))["MedicationStatement/s"]
    request = {"resourceType": "MedicationRequest", "id": "r", "status": "active", "intent": "order",
               "medicationReference": {"reference": "Medication/missing"}, "subject": {"reference": "Patient/p"}}
    assert "is not among the records" in reasons(read(request))["MedicationRequest/r"]
    contained = {**request, "medicationReference": {"reference": "#m"},
                 "contained": [{"resourceType": "Medication", "id": "m", "code": {
                     "coding": [{"system": "http://www.whocc.no/atc", "code": "P01BC01"}]}}]}
    assert read(contained).findings == {"med_quinine": "present"}
    lone = {"resourceType": "Medication", "id": "lone", "code": rxnorm}
    assert "no medication statement or request" in reasons(read(lone))["Medication/lone"]


def test_patient_age_and_sex():
    born = {"resourceType": "Patient", "id": "p", "birthDate": "1958-12-02", "gender": "other"}
    mapped = read(born)
    assert mapped.findings == {"age": 67}  # the birthday is tomorrow
    assert "administrative gender 'other'" in reasons(mapped)["Patient/p"]
    unborn = read({**born, "birthDate": "2027-01-01", "gender": "male"})
    assert unborn.findings == {"sex": "male"} and "after today" in reasons(unborn)["Patient/p"]


def test_a_pregnancy_ruled_out_by_age_is_reported_not_passed_on(mapped, bundle):
    pregnancy = {"resourceType": "Condition", "id": "preg", "clinicalStatus": {"coding": [{"code": "active"}]},
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": "59466002"}]},
                 "subject": {"reference": "Patient/p1"}}
    result = findings_from_fhir(resources_from_json([bundle, pregnancy]), today=TODAY)
    assert "pregnancy" not in result.findings and "not possible with age 68" in reasons(result)["Condition/preg"]
    validate_case(result.findings)


def test_cds_hooks_prefetch_a_patient_and_searchset_bundles(bundle, mapped):
    entries = bundle["entry"]
    patient = entries[0]["resource"]
    searchsets = [{"resourceType": "Bundle", "type": "searchset", "total": len(part),
                   "entry": [{"resource": e["resource"], "search": {"mode": "match"}} for e in part]}
                  for part in (entries[1:10], entries[10:])]
    prefetched = findings_from_fhir(resources_from_json([patient, *searchsets]), today=TODAY)
    assert prefetched.findings == mapped.findings and prefetched.sources == mapped.sources
    again = findings_from_fhir(resources_from_json([patient, bundle]), today=TODAY)  # the patient twice
    assert again.findings == mapped.findings
    assert reasons(again)["Patient/p1"] == "the same record appears again; its first copy was read"


def test_records_of_another_patient(bundle):
    other = lab("2823-3", 5.9, "mmol/L", rid="k-other", when="2026-12-01", subject={"reference": "Patient/p2"})
    mapped = findings_from_fhir(resources_from_json([bundle, other]), today=TODAY)
    assert mapped.findings["potassium"] == 2.6
    assert reasons(mapped)["Observation/k-other"] == "it is about 'Patient/p2', not Patient/p1"
    with pytest.raises(FhirError, match="2 patients"):
        findings_from_fhir(resources_from_json([bundle, {"resourceType": "Patient", "id": "p2"}]))


def test_not_fhir_is_one_sentence_naming_the_resource_and_field():
    with pytest.raises(FhirError, match="not JSON"):
        resources_from_json(b"potassium,2.6\n")
    long_date = "2026-11-30" + "x" * 500
    with pytest.raises(FhirError) as raised:
        resources_from_json({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": lab("2823-3", 2.6, "mmol/L", rid="k1", when=long_date)}]})
    assert str(raised.value).startswith("Observation/k1, field effectiveDateTime:")
    assert "xxxxxxxxxx" not in str(raised.value)
    with pytest.raises(FhirError, match="Observation/o holds a resource of a type that is not FHIR R4B"):
        resources_from_json({**lab("2823-3", 2.6, "mmol/L", rid="o"), "contained": [{"resourceType": "Foo"}]})
    with pytest.raises(FhirError) as raised:
        resources_from_json([{"resourceType": "Z" * 300}])
    assert len(str(raised.value)) < 160 and "not a FHIR R4B resource type" in str(raised.value)


def test_an_ehrs_records_are_read_one_by_one_and_every_one_left_out_is_said():
    """readable_resources (CDS Hooks prefetch): nested Bundles opened, an invalid record and an
    entry that is not an object (null, a string) each left out with a sentence, an entry
    without a resource holding nothing to say; a top-level item that is not a resource, or
    input that is not JSON, refuses the whole input."""
    inner = {"resourceType": "Bundle", "id": "inner", "type": "collection", "entry": [
        {"resource": lab("2823-3", 2.6, "mmol/L", rid="k2")}, None, {"resource": {"resourceType": "Nope"}}]}
    outer = {"resourceType": "Bundle", "id": "outer", "type": "searchset", "entry": [
        {"resource": lab("2823-3", 2.6, "mmol/L", rid="k1", when="2024-13-45")}, "k3", {"fullUrl": "urn:uuid:1"},
        {"resource": None}, {"resource": inner}, {"resource": lab("2823-3", 2.6, "mmol/L", rid="k4")}]}
    resources, left_out = readable_resources(outer)
    assert [reference_of(r) for r in resources] == ["Observation/k2", "Observation/k4"]
    assert [sentence.split(",")[0].split(":")[0] for sentence in left_out] == [
        "Observation/k1", "entry 2 of Bundle/outer is not a JSON object", "entry 2 of Bundle/inner is not a JSON object",
        "entry 3 of Bundle/inner"]
    assert readable_resources([outer, {"resourceType": "Bundle", "type": "searchset"}])[0] == resources
    for refused in ([outer, None], [{"resourceType": "Nope"}], "null", b"potassium,2.6\n", 7):
        with pytest.raises(FhirError):
            readable_resources(refused)


# --------------------------------------------------------------------------- command line

def test_predict_fhir_json(tiny_model_dir, capsys, tmp_path):
    out = tmp_path / "report.json"
    assert main(["predict", "--fhir", str(BUNDLE), "--model", str(tiny_model_dir), "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text(encoding="utf-8"))
    assert printed["assessment"]["findings"]["potassium"] == 2.6
    assert printed["fhir"]["sources"]["potassium"] == "Observation/k-new"
    assert {"reference": "Observation/na", "reason": "unit 'mg/L' is not one crampdx converts for sodium"} \
        in printed["fhir"]["unused"]


def test_predict_fhir_text(tiny_model_dir, capsys):
    assert main(["predict", "--fhir", str(BUNDLE), "--model", str(tiny_model_dir)]) == 0
    text = capsys.readouterr().out
    assert "Read from FHIR:" in text and "<- Observation/k-new" in text
    assert "Observation/k-old: a newer potassium result (2026-11-30) was used" in text
    assert "Differential" in text and "not been validated on patients" in text


def test_predict_fhir_refuses_bad_input_in_one_sentence(tiny_model_dir, capsys, tmp_path):
    not_fhir = tmp_path / "case.json"
    not_fhir.write_text(json.dumps({"potassium": 2.6}))
    assert main(["predict", "--fhir", str(not_fhir), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err
    assert "has no resourceType" in err and "Traceback" not in err and err.count("\n") == 1
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(10 * 1024 * 1024 + 1)
    assert main(["predict", "--fhir", str(huge), "--model", str(tiny_model_dir)]) == 2
    assert "more than the 10 MB" in capsys.readouterr().err
