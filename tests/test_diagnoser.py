"""The Diagnoser on single cases: ranking, SHAP explanations that add up, next best
findings, red flags, the atypical-case warning and thread safety."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import possible_case
from crampdx.contract import CaseError, load_schema, validate_case
from crampdx.synthetic import LABEL, generate, load_knowledge
from crampdx.synthetic.predictive import answer_distributions

SCHEMA = load_schema()
HYPOKALEMIA = {"potassium": 2.6, "weakness_reported": "yes", "med_diuretic": "yes", "age": 70, "sex": "female"}
CLI = {"cramp_timing": "constant_rest_pain", "nonhealing_wound": "present", "pedal_pulses": "absent", "age": 78, "smoking": "current"}


def test_rank_is_sorted_and_sums_to_one(tiny_diagnoser):
    causes = tiny_diagnoser.rank(HYPOKALEMIA)
    probabilities = [c.probability for c in causes]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-12)
    assert {c.id for c in causes} == set(tiny_diagnoser.class_ids_)
    assert [c.id for c in tiny_diagnoser.rank(HYPOKALEMIA, top=3)] == [c.id for c in causes[:3]]
    assert all(c.name and hasattr(c, "icd10") for c in causes)


def test_rank_agrees_with_batch_prediction(tiny_diagnoser):
    case = validate_case(HYPOKALEMIA)
    batch = tiny_diagnoser.predict_proba(case.to_frame()).iloc[0]
    for cause in tiny_diagnoser.rank(case):
        assert cause.probability == pytest.approx(batch[cause.id], abs=1e-12)


def test_invalid_case_raises_case_error(tiny_diagnoser):
    with pytest.raises(CaseError, match="potassium"):
        tiny_diagnoser.rank({"potassium": 20})


def _check_additivity(diagnoser, mapping):
    case = validate_case(mapping)
    causes = diagnoser.rank(case)
    explanations = {c.id: diagnoser.explain(case, c.id) for c in causes}
    for cause in causes:
        ex = explanations[cause.id]
        np.testing.assert_allclose(ex.total, ex.value, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ex.value, cause.score, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ex.probability, cause.probability, rtol=0, atol=1e-12)
        assert {c.finding_id for c in ex.contributions} == set(case.values)
        assert ex.n_not_assessed == len(SCHEMA) - len(case)
    for a, b in itertools.combinations(causes[:6], 2):
        ratio = explanations[a.id].probability / explanations[b.id].probability
        np.testing.assert_allclose(np.log(ratio), explanations[a.id].value - explanations[b.id].value, rtol=0, atol=1e-6)
    return explanations


def test_explanation_adds_up_to_the_probability_shown(tiny_diagnoser):
    explanations = _check_additivity(tiny_diagnoser, HYPOKALEMIA)
    potassium = next(c for c in explanations["hypokalemia"].contributions if c.finding_id == "potassium")
    assert potassium.text == "Potassium 2.6 mmol/L (low)"
    assert potassium.contribution > 0  # a potassium of 2.6 argues for hypokalemia


def test_explanation_of_an_empty_case_is_all_base_and_not_assessed(tiny_diagnoser):
    ex = tiny_diagnoser.explain({}, "idiopathic_nocturnal")
    assert ex.contributions == ()
    np.testing.assert_allclose(ex.base_value + ex.not_assessed, ex.value, atol=1e-6)


def test_explain_unknown_cause(tiny_diagnoser):
    with pytest.raises(KeyError, match="gout"):
        tiny_diagnoser.explain(HYPOKALEMIA, "gout")


def _valid_value(finding):
    if finding.is_numeric:
        return st.floats(min_value=finding.hard[0], max_value=finding.hard[1], allow_nan=False)
    return st.sampled_from(finding.level_ids)


valid_cases = st.lists(st.sampled_from(SCHEMA.findings), unique_by=lambda f: f.id, max_size=30).flatmap(
    lambda findings: st.fixed_dictionaries({f.id: _valid_value(f) for f in findings})).map(possible_case)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid_cases)
def test_any_valid_case_ranks_and_explains_additively(tiny_diagnoser, mapping):
    causes = tiny_diagnoser.rank(mapping)
    assert sum(c.probability for c in causes) == pytest.approx(1.0, abs=1e-9)
    ex = tiny_diagnoser.explain(mapping, causes[0].id)
    np.testing.assert_allclose(ex.total, ex.value, rtol=0, atol=1e-6)


# ------------------------------------------------------------------- next best findings

def test_next_best_findings_are_unentered_sorted_and_have_full_answer_distributions(tiny_diagnoser):
    case = {"cramp_timing": "exertional", "age": 70, "smoking": "current"}
    suggestions = tiny_diagnoser.next_best_findings(case, k=5)
    assert len(suggestions) == 5
    gains = [s.expected_information_gain for s in suggestions]
    assert gains == sorted(gains, reverse=True)
    assert not {s.finding_id for s in suggestions} & set(case)
    for s in suggestions:
        assert sum(p for _, p in s.answers) == pytest.approx(1.0, abs=1e-9)
        assert 0.0 <= s.chance_top_cause_changes <= 1.0


def test_vascular_examination_is_suggested_for_exertional_pain_in_an_elderly_smoker(tiny_diagnoser):
    suggestions = tiny_diagnoser.next_best_findings({"cramp_timing": "exertional", "age": 72, "smoking": "current"}, k=8)
    assert {"ankle_brachial_index", "pedal_pulses", "relieved_by_rest", "reproducible_walking_distance"} & {s.finding_id for s in suggestions}


def test_predictive_answer_distribution_matches_generated_frequencies(kb):
    """p(answer | case) under the knowledge base against the frequency among generated cases
    that share the case's findings (here: on hemodialysis, female)."""
    cases = generate(200_000, seed=31, knowledge=kb, complete=True)
    subset = cases[(cases["hemodialysis"] == "present") & (cases["sex"] == "female")]
    case = validate_case({"hemodialysis": "present", "sex": "female"})
    answers = {a.finding_id: a for a in answer_distributions(case.codes(), kb, ["cramps_with_dialysis", "diabetes", "pedal_pulses"])}
    n = len(subset)
    for fid, answer in answers.items():
        observed = subset[fid].value_counts(normalize=True).reindex(list(answer.values), fill_value=0).to_numpy()
        tolerance = 5 * np.sqrt(answer.probabilities * (1 - answer.probabilities) / n) + 1e-3  # 5 standard errors
        assert np.all(np.abs(observed - answer.probabilities) <= tolerance), (fid, observed, answer.probabilities)


def test_numeric_answer_bins_match_generated_frequencies(kb):
    cases = generate(100_000, seed=32, knowledge=kb, complete=True)
    subset = cases[cases["diabetes"] == "present"]
    case = validate_case({"diabetes": "present"})
    (answer,) = answer_distributions(case.codes(), kb, ["glucose"])
    from crampdx.synthetic.predictive import numeric_bins

    edges, _, _ = numeric_bins(kb.schema["glucose"], kb.tables["glucose"].default)
    observed = np.histogram(subset["glucose"], bins=edges)[0] / len(subset)
    tolerance = 5 * np.sqrt(answer.probabilities * (1 - answer.probabilities) / len(subset)) + 1e-3
    assert np.all(np.abs(observed - answer.probabilities) <= tolerance)


# ---------------------------------------------------------------------------- red flags

def test_critical_limb_ischemia_is_urgent_and_first(tiny_diagnoser):
    flags = tiny_diagnoser.red_flags(CLI)
    assert flags[0].id == "critical_limb_ischemia" and flags[0].severity == "urgent"
    assert "seed:4" in flags[0].message and "urgent vascular evaluation" in flags[0].message


def test_low_ankle_brachial_index_alone_is_a_red_flag(tiny_diagnoser):
    assert "critical_limb_ischemia" in {f.id for f in tiny_diagnoser.red_flags({"ankle_brachial_index": 0.3})}
    assert "critical_limb_ischemia" not in {f.id for f in tiny_diagnoser.red_flags({"ankle_brachial_index": 0.8})}


def test_quinine_warning_for_nocturnal_cramps(tiny_diagnoser):
    flags = {f.id: f for f in tiny_diagnoser.red_flags({"cramp_timing": "nocturnal_at_rest", "age": 40})}
    assert "no_quinine" in flags and "seed:9,2" in flags["no_quinine"].message


def test_vascular_disease_must_be_excluded_before_calling_cramps_idiopathic(tiny_diagnoser):
    risky = {"cramp_timing": "nocturnal_at_rest", "age": 70, "smoking": "current"}
    assert "exclude_vascular_disease" in {f.id for f in tiny_diagnoser.red_flags(risky)}
    examined = {**risky, "pedal_pulses": "normal", "ankle_brachial_index": 1.1}
    assert "exclude_vascular_disease" not in {f.id for f in tiny_diagnoser.red_flags(examined)}
    young = {"cramp_timing": "nocturnal_at_rest", "age": 30, "smoking": "never"}
    assert "exclude_vascular_disease" not in {f.id for f in tiny_diagnoser.red_flags(young)}


def test_medication_review_names_the_drug(tiny_diagnoser):
    flags = {f.id: f for f in tiny_diagnoser.red_flags({"med_raloxifene": "yes", "med_diuretic": "yes"})}
    assert "raloxifene" in flags["medication_review"].message.lower()
    assert "seed:2,3" in flags["medication_review"].message


def test_every_red_flag_cites_the_seed(tiny_diagnoser):
    everything = {**CLI, "age": 70, "diabetes": "yes", "burning_feet": "yes", "med_nsaid": "yes", "cramp_timing": "nocturnal_at_rest"}
    everything.pop("pedal_pulses")
    flags = tiny_diagnoser.red_flags(everything)
    assert {f.id for f in flags} >= {"critical_limb_ischemia", "exclude_vascular_disease", "diabetic_neuropathy",
                                     "no_quinine", "medication_review"}
    assert all("(seed:" in f.message for f in flags)


# ------------------------------------------------------------------------- atypical cases

def test_an_implausible_combination_is_atypical(tiny_diagnoser):
    result = tiny_diagnoser.atypical({"age": 9, "potassium": 8.5, "sodium": 110, "gangrene": "yes", "hemodialysis": "no", "egfr": 5})
    assert result.is_atypical and "unusual" in result.message


@pytest.mark.slow
def test_generated_cases_are_rarely_atypical(tiny_diagnoser):
    frame = generate(300, seed=41).drop(columns=LABEL)
    flagged = [tiny_diagnoser.atypical(row.dropna().to_dict()).is_atypical for _, row in frame.iterrows()]
    # by construction about 1 % fall below the 1st percentile; 5 % is far beyond sampling noise
    assert np.mean(flagged) < 0.05


def test_an_empty_case_is_not_atypical(tiny_diagnoser):
    assert not tiny_diagnoser.atypical({}).is_atypical


# ----------------------------------------------------------------------------- threads

def test_many_threads_get_the_same_answers_as_one(tiny_diagnoser):
    frame = generate(24, seed=51).drop(columns=LABEL)
    cases = [row.dropna().to_dict() for _, row in frame.iterrows()]

    def answer(mapping):
        causes = tiny_diagnoser.rank(mapping)
        ex = tiny_diagnoser.explain(mapping, causes[0].id)
        return [c.probability for c in causes], [c.contribution for c in ex.contributions], ex.not_assessed

    expected = [answer(m) for m in cases]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            got = list(pool.map(answer, cases))
            assert got == expected


def test_waterfall_runs_from_the_average_case_through_every_finding_to_the_score(tiny_diagnoser):
    explanation = tiny_diagnoser.explain(HYPOKALEMIA, "hypokalemia")
    steps = explanation.waterfall(limit=2)
    assert steps[0].kind == "average case" and steps[0].end == pytest.approx(explanation.base_value)
    assert steps[-1].kind == "score" and steps[-1].end == pytest.approx(explanation.value)
    middle = steps[1:-1]
    assert [s.start for s in middle[1:]] == pytest.approx([s.end for s in middle[:-1]])  # each starts where the last ended
    assert middle[-1].kind == "not assessed" and middle[-1].contribution == pytest.approx(explanation.not_assessed)
    assert middle[-1].end == pytest.approx(explanation.value, abs=1e-6)
    assert len(explanation.contributions) > 2 and "other entered findings" in middle[2].text
    assert all(s.kind == ("for" if s.contribution > 0 else "against") for s in middle[:-1])


def _with_evidence(monkeypatch, percentile, log_evidence):
    import crampdx.model.diagnoser

    monkeypatch.setattr(crampdx.model.diagnoser, "evidence_percentile", lambda codes, kb, **kwargs: (percentile, log_evidence, 1000))


def test_the_rarest_finite_case_is_not_called_rarer_than_all(tiny_diagnoser, monkeypatch):
    _with_evidence(monkeypatch, 0.0, -40.0)
    result = tiny_diagnoser.atypical(HYPOKALEMIA)
    assert result.is_atypical and "rarer than >99.9 % of comparable synthetic cases" in result.message
    assert "100.0" not in result.message and "impossible" not in result.message


@pytest.mark.parametrize("percentile, shown", [(0.0009, ">99.9"), (0.001, "99.9"), (0.0015, "99.8"), (0.005, "99.5"), (0.0099, "99.0")])
def test_rarity_is_shown_rounded_down(tiny_diagnoser, monkeypatch, percentile, shown):
    _with_evidence(monkeypatch, percentile, -20.0)
    assert f"rarer than {shown} % of comparable" in tiny_diagnoser.atypical(HYPOKALEMIA).message


def test_an_impossible_combination_says_so(tiny_diagnoser, monkeypatch):
    _with_evidence(monkeypatch, 0.0, float("-inf"))
    result = tiny_diagnoser.atypical(HYPOKALEMIA)
    assert result.is_atypical and result.log_evidence == float("-inf")
    assert result.message == ("This combination of findings is impossible under the knowledge base the model was trained "
                              "from (no synthetic case has it): the ranking is an extrapolation.")


def test_dialysis_cramps_without_dialysis_are_flagged_atypical(tiny_diagnoser):
    """Contradictory facts are not impossible (the knowledge base's floors keep 0.1 % for
    them, as real records contain errors) but far rarer than any typical case."""
    mapping = {"hemodialysis": "absent", "cramps_with_dialysis": "during_or_after_sessions"}
    try:
        validate_case(mapping)
    except CaseError:  # pragma: no cover - if case validation comes to reject it, nothing to rank
        pytest.skip("case validation rejects this combination")
    result = tiny_diagnoser.atypical(mapping)
    assert result.is_atypical and result.percentile < 0.01 and "caution" in result.message


def test_the_atypical_check_says_on_how_many_references_it_was_measured(tiny_diagnoser):
    """A usual case is settled on fewer references than a case below the threshold, which is
    measured on all of them."""
    usual = tiny_diagnoser.atypical({"true_cramps": "present", "cramp_timing": "nocturnal_at_rest", "age": 70})
    assert not usual.is_atypical and 0 < usual.reference_cases < 1000
    assert usual.to_dict()["reference_cases"] == usual.reference_cases
    unusual = tiny_diagnoser.atypical({"age": 9, "potassium": 8.5, "sodium": 110, "gangrene": "yes", "hemodialysis": "no",
                                       "egfr": 5})
    assert unusual.is_atypical and unusual.reference_cases == 1000
