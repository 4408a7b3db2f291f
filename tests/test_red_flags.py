"""Red-flag rules, case by case: each pitfall of the seed fires when it should and only then."""

from __future__ import annotations

import pytest

from crampdx.contract import validate_case
from crampdx.model.red_flags import red_flags


def flags(case: dict, ranking=()) -> dict:
    return {flag.id: flag for flag in red_flags(validate_case(case), ranking)}


ELDERLY_SMOKER = {"age": 76, "smoking": "current"}


def test_night_time_foot_pain_with_absent_pulses_is_read_as_ischemic_rest_pain():
    case = {**ELDERLY_SMOKER, "cramp_timing": "nocturnal_at_rest", "cramp_location": "foot", "pedal_pulses": "absent"}
    found = flags(case)
    assert found["critical_limb_ischemia"].severity == "urgent"
    assert "peripheral_arterial_disease" not in found  # the urgent flag says it already
    calf = flags({**case, "cramp_location": "calf"})
    assert "critical_limb_ischemia" not in calf and "peripheral_arterial_disease" in calf


@pytest.mark.parametrize("finding", [{"pedal_pulses": "absent"}, {"pedal_pulses": "diminished"},
                                     {"ankle_brachial_index": 0.85}, {"ankle_brachial_index": 0.90}])
def test_abnormal_pulses_or_a_low_ankle_brachial_index_are_signs_of_pad(finding):
    flag = flags(finding)["peripheral_arterial_disease"]
    assert flag.severity == "warning" and "seed:6" in flag.message


def test_a_normal_ankle_brachial_index_raises_no_vascular_flag():
    found = flags({**ELDERLY_SMOKER, "ankle_brachial_index": 1.1, "pedal_pulses": "normal"})
    assert not {"peripheral_arterial_disease", "exclude_vascular_disease", "critical_limb_ischemia"} & set(found)


def test_normal_pulses_do_not_exclude_pad_when_there_are_risk_factors():
    flag = flags({**ELDERLY_SMOKER, "pedal_pulses": "normal"})["exclude_vascular_disease"]
    assert "Normal pedal pulses do not exclude" in flag.message and "ankle-brachial index" in flag.message
    assert "exclude_vascular_disease" not in flags({"age": 30, "smoking": "never", "pedal_pulses": "normal"})


def test_claudication_is_not_taken_for_nocturnal_cramps():
    found = flags({"cramp_timing": "exertional", "relieved_by_rest": "yes", "reproducible_walking_distance": "yes"})
    flag = found["claudication_pattern"]
    assert "resolves with rest and at a reproducible walking distance" in flag.message
    assert "seed:4,2" in flag.message
    assert "examine pedal pulses and measure the ankle-brachial index" in flag.message
    examined = flags({"cramp_timing": "exertional", "relieved_by_rest": "yes", "pedal_pulses": "diminished",
                      "ankle_brachial_index": 0.7})["claudication_pattern"]
    assert "weigh the recorded pulses and ankle-brachial index" in examined.message
    assert "claudication_pattern" not in flags({"cramp_timing": "exertional", "relieved_by_rest": "no"})
    assert "claudication_pattern" not in flags({"cramp_timing": "nocturnal_at_rest", "relieved_by_rest": "yes"})


def test_diabetes_asks_for_the_neurologic_examination_until_it_is_done():
    alone = flags({"diabetes": "yes"})["diabetic_neuropathy"]
    assert alone.severity == "advice" and "pinprick, vibration, monofilament, ankle reflexes" in alone.message
    assert flags({"diabetes": "yes", "numbness": "yes"})["diabetic_neuropathy"].severity == "warning"
    examined = {"diabetes": "yes", "pinprick": "normal", "vibration": "normal", "monofilament": "normal",
                "ankle_reflex": "normal"}
    assert "diabetic_neuropathy" not in flags(examined)
    assert "diabetic_neuropathy" not in flags({"burning_feet": "yes"})


def test_medication_review_names_the_drugs_and_asks_when_none_is_recorded():
    assert flags({"med_nsaid": "yes"})["medication_review"].message.startswith("Naproxen or another NSAID is")
    assert "No medications recorded" in flags({"age": 40})["medication_review"].message
    assert "medication_review" not in flags({"age": 40, "med_diuretic": "no"})
    assert "medication_review" not in flags({})


def test_quinine_warning_follows_nocturnal_cramps_or_a_high_idiopathic_rank():
    assert "no_quinine" in flags({"age": 50}, ranking=["idiopathic_nocturnal"])
    assert "no_quinine" not in flags({"age": 50}, ranking=["hypokalemia", "pad_claudication", "lumbar_canal_stenosis",
                                                           "idiopathic_nocturnal"])
    assert "contraindicated" in flags({"cramp_timing": "nocturnal_at_rest"})["no_quinine"].message


def test_flags_are_ordered_by_severity_and_all_cite_the_seed():
    case = {**ELDERLY_SMOKER, "gangrene": "yes", "cramp_timing": "nocturnal_at_rest", "diabetes": "yes"}
    found = red_flags(validate_case(case), ["idiopathic_nocturnal"])
    order = {"urgent": 0, "warning": 1, "advice": 2}
    assert [order[f.severity] for f in found] == sorted(order[f.severity] for f in found)
    assert found[0].id == "critical_limb_ischemia"
    assert all("(seed:" in f.message for f in found)


def test_no_quinine_warning_on_an_empty_case():
    assert "no_quinine" not in flags({}, ranking=["idiopathic_nocturnal"])
    assert "no_quinine" in flags({"age": 60}, ranking=["idiopathic_nocturnal"])


@pytest.mark.parametrize(("finding", "value", "shown"), [
    ("potassium", 1.6, "below 2.5"), ("potassium", 7.1, "above 6.5"), ("sodium", 118, "below 120"),
    ("calcium", 6.0, "below 6.5"), ("magnesium", 0.7, "below 1"), ("glucose", 35, "below 50"),
    ("creatine_kinase", 12000, "above 5000")])
def test_critical_laboratory_values_are_urgent(finding, value, shown):
    flag = flags({finding: value})["critical_laboratory_value"]
    assert flag.severity == "urgent" and shown in flag.message and "assumption" in flag.message


def test_abnormal_but_not_critical_values_raise_no_urgent_flag():
    assert "critical_laboratory_value" not in flags({"potassium": 3.1, "sodium": 131, "creatine_kinase": 900})


def test_a_flag_renders_every_field_it_has():
    from dataclasses import asdict

    for flag in red_flags(validate_case({"gangrene": "present", "med_diuretic": "yes", "diabetes": "yes", "potassium": 2.2})):
        assert flag.to_dict() == {**asdict(flag), "because": list(flag.because)}
        assert list(flag.to_dict()) == list(asdict(flag))
