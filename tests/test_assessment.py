"""One result type: Diagnoser.assess returns an Assessment whose to_dict() is the documented,
versioned JSON shape (model/assessment.schema.json) that every front end emits."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from scipy.special import softmax

from crampdx import DISCLAIMER
from crampdx.contract import validate_case
from crampdx.model.assessment import ASSESSMENT_FORMAT_VERSION, assessment_json_schema
from crampdx.model.red_flags import red_flags
from crampdx.synthetic import generate

HYPOKALEMIA = {"potassium": 2.6, "weakness_reported": "present", "med_diuretic": "present", "age": 71, "sex": "female"}


@pytest.fixture(scope="module")
def validator():
    schema = assessment_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _errors(validator, document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_a_full_assessment_fits_the_json_schema(tiny_diagnoser, validator):
    assessment = tiny_diagnoser.assess(HYPOKALEMIA, top=5, explain=3, next_findings=5,
                                       not_used={"sodium": "900 mmol/L is outside the plausible range"})
    document = json.loads(json.dumps(assessment.to_dict()))  # exactly what is written out
    assert _errors(validator, document) == []
    assert document["format_version"] == ASSESSMENT_FORMAT_VERSION and document["disclaimer"] == DISCLAIMER
    assert len(document["differential"]) == 5 and document["n_causes"] == len(tiny_diagnoser.class_ids_)
    assert len(document["explanations"]) == 3 and len(document["next_best_findings"]) == 5
    assert document["atypical"] is not None and document["red_flags"]


def test_a_minimal_assessment_fits_the_json_schema_too(tiny_diagnoser, validator):
    assessment = tiny_diagnoser.assess({}, explain=0, next_findings=0, atypical=False)
    document = assessment.to_dict()
    assert _errors(validator, document) == []
    assert document["explanations"] == [] and document["next_best_findings"] is None and document["atypical"] is None


def test_the_json_schema_refuses_what_is_not_an_assessment(tiny_diagnoser, validator):
    document = tiny_diagnoser.assess(HYPOKALEMIA, next_findings=2).to_dict()
    for broken in (
        {k: v for k, v in document.items() if k != "disclaimer"},
        {**document, "differential": [{**document["differential"][0], "probability": 1.5}]},
        {**document, "format_version": ASSESSMENT_FORMAT_VERSION + 1},
        {**document, "extra": 1},
    ):
        assert _errors(validator, broken), broken


def test_everything_in_an_assessment_comes_from_one_ranking(tiny_diagnoser):
    assessment = tiny_diagnoser.assess(HYPOKALEMIA, explain=["hypokalemia", "hyponatremia"])
    assert [c.id for c in assessment.causes] == [c.id for c in tiny_diagnoser.rank(HYPOKALEMIA)]
    assert sum(c.probability for c in assessment.causes) == pytest.approx(1.0, abs=1e-9)
    probabilities = softmax([c.score for c in assessment.causes])
    np.testing.assert_allclose(probabilities, [c.probability for c in assessment.causes], atol=1e-12)
    for explanation in assessment.explanations:
        cause = next(c for c in assessment.causes if c.id == explanation.cause_id)
        assert explanation.probability == pytest.approx(cause.probability, abs=1e-12)
        np.testing.assert_allclose(explanation.total, explanation.value, atol=1e-6)
    assert [f.id for f in assessment.red_flags] == [f.id for f in tiny_diagnoser.red_flags(HYPOKALEMIA)]
    assert assessment.model.knowledge_sha256 == tiny_diagnoser.knowledge_.sha256


def test_an_exported_assessment_imports_as_the_same_case(tiny_diagnoser):
    from crampdx.contract import findings_from_json

    document = json.dumps(tiny_diagnoser.assess(HYPOKALEMIA, atypical=False).to_dict())
    assert validate_case(findings_from_json(document)).values == validate_case(HYPOKALEMIA).values


def test_an_unknown_cause_to_explain_is_refused(tiny_diagnoser):
    with pytest.raises(KeyError, match="unknown cause 'gout'"):
        tiny_diagnoser.assess(HYPOKALEMIA, explain=["gout"])


# ----------------------------------------------------------------- next best findings

def _near_complete_cases(kb, n: int, seed: int) -> list[dict]:
    """Generated cases with every finding but one to three entered (the regime where the
    old estimate went negative)."""
    frame = generate(n, seed=seed, knowledge=kb, complete=True).drop(columns="etiology")
    rng = np.random.default_rng(seed)
    cases = []
    for _, row in frame.iterrows():
        values = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for fid in rng.choice(list(values), size=int(rng.integers(1, 4)), replace=False):
            values.pop(fid)
        cases.append(values)
    return cases


@pytest.mark.slow
def test_expected_information_gain_is_never_negative(tiny_diagnoser, kb):
    """Over 120 cases, sparse and nearly complete: the gain (mutual information under one
    predictive model) is >= 0 and never above the entropy of the differential."""
    # sparse: the first k findings (schema order) of a generated case, k = 0 … 59
    sparse = [dict(list(c.items())[:k]) for k, c in enumerate(_near_complete_cases(kb, 60, 7))]
    checked = 0
    for values in sparse + _near_complete_cases(kb, 60, 8):
        try:
            case = validate_case(values)
        except ValueError:
            continue
        p = tiny_diagnoser.predict_proba_codes(case.codes())[0]
        entropy = -(p * np.log2(p)).sum()
        for item in tiny_diagnoser.next_best_findings(case, k=100):
            assert 0.0 <= item.expected_information_gain <= entropy + 1e-9, (values, item)
            assert 0.0 <= item.chance_top_cause_changes <= 1.0
            assert sum(p for _, p in item.answers) == pytest.approx(1.0, abs=1e-9)
        checked += 1
    assert checked >= 100


def test_the_chance_that_the_top_cause_changes_is_bounded_by_its_probability(tiny_diagnoser):
    """Under one joint model the top cause's probability after an answer averages to its
    probability now, p; an answer that dethrones it leaves it at most 1/2, so the chance of
    a change is at most 2 (1 - p): a near-certain differential rarely changes."""
    cases = [HYPOKALEMIA, {"age": 70}, {"age": 30, "sex": "female"}, {"cramp_timing": "exertional"},
             {"potassium": 3.0}, {"sex": "male", "age": 20, "triggered_by_exercise": "present"}]
    seen_change = False
    for values in cases:
        case = validate_case(values)
        top = tiny_diagnoser.predict_proba_codes(case.codes())[0].max()
        for item in tiny_diagnoser.next_best_findings(case, k=10):
            assert item.chance_top_cause_changes <= 2 * (1 - top) + 1e-9, (values, item.finding_id)
            seen_change |= item.chance_top_cause_changes > 0.05
    assert seen_change  # the bound is not met vacuously by zeros


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_gains_are_sorted_and_non_negative_for_random_sparse_cases(tiny_diagnoser, kb, seed):
    (values,) = [dict(list(c.items())[: seed % 12]) for c in _near_complete_cases(kb, 1, seed)]
    try:
        case = validate_case(values)
    except ValueError:
        return
    gains = [n.expected_information_gain for n in tiny_diagnoser.next_best_findings(case, k=10)]
    assert gains == sorted(gains, reverse=True) and min(gains) >= 0.0


def test_version_is_printed(capsys):
    from crampdx import __version__
    from crampdx.cli.main import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"crampdx {__version__}"


def test_assessment_json_schema_is_a_fresh_copy():
    schema = assessment_json_schema()
    schema["properties"].clear()
    assert assessment_json_schema()["properties"], "the cached schema must not be shared"
    assert copy.deepcopy(assessment_json_schema()) == assessment_json_schema()


def test_an_impossible_case_is_valid_json_with_a_null_log_evidence(tiny_diagnoser, validator):
    """A case the knowledge base deems impossible (a pregnant man, bypassing validation) must
    still give strict JSON: no -Infinity, which JavaScript, Go and jq reject."""
    from crampdx.model.results import Atypicality

    atypical = Atypicality(True, 0.0, float("-inf"), "impossible", 0)
    assert atypical.to_dict()["log_evidence"] is None
    document = tiny_diagnoser.assess(HYPOKALEMIA, next_findings=3).to_dict()
    document["atypical"] = atypical.to_dict()
    json.loads(json.dumps(document, allow_nan=False))
    validator.validate(document)


@pytest.mark.parametrize("arguments", [{"top": 0}, {"top": -1}, {"top": 2.5}, {"explain": -1}, {"explain": 2.0},
                                       {"next_findings": -1}, {"top": True}])
def test_assess_refuses_arguments_that_would_corrupt_the_result(tiny_diagnoser, arguments):
    with pytest.raises(ValueError, match="top|explain|next_findings"):
        tiny_diagnoser.assess(HYPOKALEMIA, **arguments)


def test_assess_takes_numpy_integers(tiny_diagnoser):
    assessment = tiny_diagnoser.assess(HYPOKALEMIA, top=np.int64(3), explain=np.int64(2), next_findings=np.int64(2))
    assert len(assessment.to_dict()["differential"]) == 3 and len(assessment.explanations) == 2


def test_assess_takes_one_cause_id_as_a_string_and_explains_each_id_once(tiny_diagnoser):
    assessment = tiny_diagnoser.assess(HYPOKALEMIA, explain="hypokalemia", next_findings=0)
    assert [e.cause_id for e in assessment.explanations] == ["hypokalemia"]
    twice = tiny_diagnoser.assess(HYPOKALEMIA, explain=["hypokalemia", "hypokalemia"], next_findings=0)
    assert len(twice.explanations) == 1


def test_an_answer_the_entered_findings_rule_out_gets_no_probability(tiny_diagnoser):
    """A man cannot be pregnant: the suggested question, if any, gives every trimester 0."""
    suggestions = tiny_diagnoser.next_best_findings({"sex": "male", "age": 30}, k=200)
    pregnancy = next(s for s in suggestions if s.finding_id == "pregnancy")
    assert dict(pregnancy.answers)["not pregnant"] == pytest.approx(1.0)
    assert all(p == 0.0 for label, p in pregnancy.answers if label != "not pregnant")
    for suggestion in suggestions:
        assert all(0.0 <= p <= 1.0 for _, p in suggestion.answers)


def _plain_record(diagnoser, case, top: int, explain: int) -> dict:
    """The assessment of ``case`` (atypical check off) rendered part by part the plain way:
    each value worded on its own, each float taken one by one, each flag through
    dataclasses.asdict, the probabilities recomputed from the scores."""
    from dataclasses import asdict

    from crampdx.contract.case import describe_value

    schema, case = diagnoser.schema, diagnoser.case(case)
    words = {fid: describe_value(schema[fid], value, case.flags.get(fid)) for fid, value in case.values.items()}
    rows = diagnoser._rows(case)
    scores = diagnoser.scores(rows).mean(axis=0)
    probabilities = softmax(scores)
    order = np.argsort(-probabilities, kind="stable")
    causes = [{"id": c.id, "name": c.name, "icd10": c.icd10, "probability": float(probabilities[i]), "score": float(scores[i])}
              for i in order for c in [diagnoser.knowledge_.class_of(diagnoser.class_ids_[i])]]
    explained = [c["id"] for c in causes[:explain]]
    values, base = diagnoser.shap_values(rows, [diagnoser.class_ids_.index(c) for c in explained])
    values = values.mean(axis=0)
    explanations = []
    for i, cause in enumerate(explained):
        contributions, not_assessed = [], 0.0
        for j, finding in enumerate(schema):
            if finding.id in case:
                contributions.append({"finding_id": finding.id, "label": finding.label, "section": finding.section,
                                      "text": words[finding.id], "contribution": float(values[j, i])})
            else:
                not_assessed += float(values[j, i])
        contributions.sort(key=lambda c: -abs(c["contribution"]))
        shown = next(c for c in causes if c["id"] == cause)
        explanations.append({"cause_id": cause, "cause_name": shown["name"], "icd10": shown["icd10"],
                             "probability": shown["probability"], "value": shown["score"], "base_value": float(base[i]),
                             "contributions": contributions, "not_assessed": not_assessed,
                             "n_not_assessed": len(schema) - len(case)})
    flags = [{**asdict(flag), "because": list(flag.because)} for flag in red_flags(case, [c["id"] for c in causes])]
    return {"findings": case.to_dict(), "findings_text": words, "flags": dict(case.flags), "n_causes": len(causes),
            "differential": causes[:top], "red_flags": flags, "explanations": explanations,
            "next_best_findings": None, "atypical": None}


def test_the_record_is_the_plain_rendering_of_its_parts(tiny_diagnoser):
    """Every number and word of the JSON record, exactly, against the assessment rendered the
    plain way (generated cases, results known only as a range, flags, several explanations)."""
    frame = generate(40, seed=31).drop(columns="etiology")
    cases = [{k: v.item() if hasattr(v, "item") else v for k, v in row.dropna().items()} for _, row in frame.iterrows()]
    cases += [{**HYPOKALEMIA, "potassium": "low", "gangrene": "present"}, {"sodium": "<125", "diabetes": "yes"}, {"age": 50}]
    for k, case in enumerate(cases):
        top, explain = 3 + k % 8, 1 + k % 4
        record = tiny_diagnoser.assess(case, top=top, explain=explain, atypical=False).to_dict()
        expected = _plain_record(tiny_diagnoser, case, top, explain)
        assert json.dumps({key: record[key] for key in expected}) == json.dumps(expected), case
        assert list(record) == ["format", "format_version", "created", "disclaimer", "model", *list(expected)[:3],
                                "entries_not_used", *list(expected)[3:]]


def test_one_case_s_probabilities_and_mean_are_the_floats_of_scipy_and_numpy():
    """The shortcuts of one case's assessment give the very floats of scipy's softmax and
    numpy's mean over rows (bit for bit: -0.0, infinities and NaN included)."""
    from crampdx.model.explain import mean_over_rows, probabilities_of

    rng = np.random.default_rng(7)
    for n in (2, 7, 8, 9, 25, 64):
        for scale in (0.1, 1.0, 30.0):
            scores = rng.normal(scale=scale, size=n)
            assert probabilities_of(scores).tobytes() == softmax(scores).tobytes()
    for shape in ((1, 25), (1, 40, 3), (3, 25)):
        values = rng.normal(size=shape)
        values.flat[::7], values.flat[1], values.flat[2], values.flat[3] = -0.0, np.inf, -np.inf, np.nan
        assert mean_over_rows(values).tobytes() == values.mean(axis=0).tobytes()
