"""Real cases: results known only in words or as a bound, sparse workups, floors, the mapped
development vignettes and `crampdx validate`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crampdx.cli.main import main
from crampdx.contract import CaseError, findings_from_json, read_case_table, resolve_case_table, validate_case
from crampdx.contract.schema import Interval
from crampdx.data import DEV_VIGNETTES
from crampdx.synthetic import LABEL, generate, posterior_from_codes
from crampdx.synthetic.posterior import case_posterior
from crampdx.training.regimes import REGIMES, regime_cases

# ------------------------------------------------------------------ results in words

@pytest.mark.parametrize(("raw", "text", "flag"), [
    ("low", "low", "low"), ("Decreased", "low", "low"), ("raised", "high", "high"), ("WNL", "normal", None),
    ("<3", "<3", "low"), ("< 3,5", "<3.5", "low"), ("<4", "<4", None), (">6", ">6", "high"),
])
def test_a_potassium_known_only_in_words_or_as_a_bound_is_a_range(raw, text, flag):
    case = validate_case({"potassium": raw})
    value = case.values["potassium"]
    assert isinstance(value, Interval) and value.text == text
    assert case.flags.get("potassium") == flag
    assert case.to_dict() == {"potassium": text}
    assert np.isnan(case.codes()).all() and case.intervals == {"potassium": value}


def test_ranges_are_described_in_words_and_survive_a_round_trip():
    case = validate_case({"potassium": "low", "tsh": "suppressed", "vitamin_d": "<3", "creatine_kinase": "markedly raised"})
    assert case.describe("potassium") == "Potassium: low (no value)"
    assert case.describe("tsh") == "TSH: undetectable (no value)"
    assert case.describe("creatine_kinase") == "Creatine kinase: markedly raised (no value)"
    assert "<3 ng/mL (no exact value)" in case.describe("vitamin_d")
    assert validate_case(findings_from_json(json.dumps(case.to_dict()))).values == case.values


@pytest.mark.parametrize(("raw", "message"), [
    ("lowish", "a result in words (low, normal, high)"),
    ("<0", "outside the plausible range"),
    ("<abc", "not a number after <"),
])
def test_a_word_that_is_no_result_names_what_is_accepted(raw, message):
    with pytest.raises(CaseError) as error:
        validate_case({"potassium": raw})
    assert message in error.value.problems["potassium"]


def test_undetectable_is_only_for_the_findings_that_have_it():
    assert validate_case({"tsh": "undetectable"}).values["tsh"].high == 0.01
    with pytest.raises(CaseError, match="undetectable"):
        validate_case({"sodium": "undetectable"})


def test_interval_masses_of_low_normal_and_high_add_up_to_one(kb):
    for fid in ("potassium", "tsh", "creatine_kinase", "glucose"):
        table, finding = kb.tables[fid], kb.schema[fid]
        table = getattr(table, "default", table)
        total = sum(np.exp(table.log_mass(*finding.qualitative[name])) for name in ("low", "normal", "high"))
        np.testing.assert_allclose(total, 1.0, atol=1e-9, err_msg=fid)


@pytest.mark.slow
@pytest.mark.parametrize(("fid", "level", "given"), [
    ("potassium", "low", {"med_diuretic": "present"}),
    ("egfr", "low", {}),  # a child of hemodialysis, which is not assessed: summed out
    ("tsh", "high", {"sex": "female"}),
])
def test_the_exact_posterior_of_a_range_matches_generated_frequencies(kb, fid, level, given):
    """p(class | value in the range, other findings) against the class frequencies among
    generated cases whose value falls in that range (5 standard errors)."""
    cases = generate(300_000, seed=41, knowledge=kb, complete=True)
    low, high = kb.schema[fid].qualitative[level]
    subset = cases[(cases[fid] >= low) & (cases[fid] <= high)]
    for other, value in given.items():
        subset = subset[subset[other] == value]
    observed = subset[LABEL].value_counts(normalize=True).reindex(list(kb.class_ids), fill_value=0).to_numpy()
    exact = case_posterior(validate_case({fid: level, **given}), kb)
    tolerance = 5 * np.sqrt(exact * (1 - exact) / len(subset)) + 2e-3
    assert len(subset) > 2000
    assert np.all(np.abs(observed - exact) <= tolerance), (observed.round(3), exact.round(3))


def test_a_range_is_scored_as_the_mean_over_values_within_it(tiny_diagnoser):
    low = tiny_diagnoser.assess({"potassium": "low", "med_diuretic": "yes"}, atypical=False)
    again = tiny_diagnoser.assess({"potassium": "low", "med_diuretic": "yes"}, atypical=False)
    assert [c.probability for c in low.causes] == [c.probability for c in again.causes]  # the same draws
    explanation = low.explanations[0]
    np.testing.assert_allclose(explanation.total, explanation.value, atol=1e-6)
    assert "Potassium: low (no value)" in [c.text for c in explanation.contributions]
    # the range lies between its ends: hypokalemia is more likely with "low" than with 4.2
    normal = tiny_diagnoser.rank({"potassium": 4.2, "med_diuretic": "yes"})
    p = {c.id: c.probability for c in low.causes}
    assert p["hypokalemia"] > next(c.probability for c in normal if c.id == "hypokalemia")


def test_a_table_with_words_ranks_each_row_as_one_case_would(tiny_diagnoser, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text('id,potassium,med_diuretic,sodium\n1,low,yes,"128,5"\n2,2.9,yes,140\n', encoding="utf-8")
    table = resolve_case_table(read_case_table(path), tiny_diagnoser.schema, keep_other=True)
    assert table.ranges == {0: {"potassium": validate_case({"potassium": "low"}).values["potassium"]}}
    assert table.codes[0, tiny_diagnoser.schema.position("sodium")] == 128.5  # a decimal comma, as in one case
    proba = tiny_diagnoser.predict_proba_codes(table.codes, table.ranges)
    one = tiny_diagnoser.rank(table.case(0, tiny_diagnoser.schema))
    expected = {c.id: c.probability for c in one}
    np.testing.assert_allclose(proba[0], [expected[c] for c in tiny_diagnoser.class_ids_], atol=1e-12)


def test_a_critical_value_known_only_in_words_asks_for_the_value(tiny_diagnoser):
    flags = {f.id: f for f in tiny_diagnoser.red_flags({"potassium": "low"})}
    assert "value_needed" in flags and "critical below 2.5" in flags["value_needed"].message
    assert "critical_laboratory_value" not in flags
    assert "critical_laboratory_value" in {f.id for f in tiny_diagnoser.red_flags({"potassium": "<2"})}


# ------------------------------------------------------------------ no class impossible

_ENTRIES = st.dictionaries(
    st.sampled_from(["age", "sex", "pregnancy", "potassium", "tsh", "creatine_kinase", "joint_examination", "med_raloxifene",
                     "hemodialysis", "egfr", "smoking", "cramps_with_dialysis", "gangrene", "foot_structure"]),
    st.just(None), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=_ENTRIES, data=st.data())
def test_no_valid_case_makes_the_posterior_nan_or_a_class_impossible(kb, keys, data):
    """Whatever a clinician can enter, the exact posterior is finite and every class keeps a
    positive probability, except the pregnancy class for a man (female by definition)."""
    values = {}
    for fid in keys:
        finding = kb.schema[fid]
        if finding.is_numeric:
            options = [*finding.qualitative] or [finding.hard[0], finding.hard[1]]
            values[fid] = data.draw(st.one_of(st.sampled_from(options),
                                              st.floats(finding.hard[0], finding.hard[1], allow_nan=False)))
        else:
            values[fid] = data.draw(st.sampled_from(finding.level_ids))
    try:
        case = validate_case(values)
    except CaseError:
        return
    post = case_posterior(case, kb)
    assert np.isfinite(post).all() and post.sum() == pytest.approx(1.0)
    zero = {kb.class_ids[i] for i in np.flatnonzero(post <= 0)}
    rule, age = kb.schema["pregnancy"].only_when, case.values.get("age")
    impossible_pregnancy = rule.allows(case.values.get("sex"), age if isinstance(age, float) else None)
    allowed = {"pregnancy"} if impossible_pregnancy else set()  # the one class with declared hard age limits
    assert zero <= allowed, (values, zero)


# ------------------------------------------------------------------ workups and regimes

def test_brief_workups_keep_a_few_findings_and_missingness_ignores_the_etiology(kb):
    brief = next(w for w in kb.workups if w.findings)
    cases = generate(40_000, seed=5, knowledge=kb, workup=brief.name)
    counts = cases.drop(columns=LABEL).notna().sum(axis=1)
    assert counts.between(*brief.findings).all()
    frame = pd.DataFrame({"n": counts, "cls": cases[LABEL].astype(str)})
    per_class = frame.groupby("cls")["n"].agg(["mean", "count"])
    per_class = per_class[per_class["count"] >= 400]
    se = counts.std() / np.sqrt(per_class["count"])
    assert (np.abs(per_class["mean"] - counts.mean()) <= 5 * se).all(), per_class


def test_the_mix_draws_brief_workups_at_their_declared_rate(kb):
    brief = next(w for w in kb.workups if w.findings)
    counts = generate(20_000, seed=6, knowledge=kb).drop(columns=LABEL).notna().sum(axis=1)
    share = (counts <= brief.findings[1]).mean()  # a full workup almost never assesses so few
    assert abs(share - brief.weight) < 5 * np.sqrt(brief.weight * (1 - brief.weight) / 20_000) + 0.01


@pytest.mark.parametrize("regime", REGIMES)
def test_regime_cases_hold_what_the_regime_says(kb, regime):
    codes, labels = regime_cases(kb, regime, 400, seed=3)
    entered = (~np.isnan(codes)).sum(axis=1)
    if regime.endswith("findings"):
        assert (entered == int(regime.split()[0])).all()
    if regime == "age missing":
        assert np.isnan(codes[:, kb.schema.position("age")]).all()
    assert len(labels) == 400 and np.isfinite(posterior_from_codes(codes, kb)).all()


# ------------------------------------------------------------ the development vignettes

def test_every_mapped_development_vignette_validates_and_its_gold_is_a_class(kb):
    lines = DEV_VIGNETTES.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 70
    for line in lines:
        record = json.loads(line)
        assert record["gold"] in kb.class_ids, record["id"]
        assert validate_case(record["case"]), record["id"]
        assert isinstance(record["unmapped"], list) and record["source"]


def test_validate_reports_model_and_posterior_with_intervals(tiny_model_dir, capsys):
    assert main(["validate", str(DEV_VIGNETTES), "--model", str(tiny_model_dir), "--json", "--worst", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 70 and len(report["worst"]) == 3
    for side in ("model", "posterior"):
        for k in ("top1", "top3", "top5"):
            figure = report[side][k]
            assert 0 <= figure["ci95"][0] <= figure["value"] <= figure["ci95"][1] <= 1
        assert report[side]["top1"]["value"] <= report[side]["top3"]["value"] <= report[side]["top5"]["value"]
        assert 0 < report[side]["mean_reciprocal_rank"] <= 1
    assert sum(c["n"] for c in report["per_class"].values()) == 70
    assert "not been validated on patients" in report["disclaimer"]


def test_validate_names_the_line_of_a_bad_case(tiny_model_dir, tmp_path, capsys):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a", "gold": "hypokalemia", "case": {"potassium": 2.9}}\n'
                    '{"id": "b", "gold": "gout", "case": {"age": 50}}\n'
                    '{"id": "c", "gold": "hypokalemia", "case": {"potassium": 99}}\n', encoding="utf-8")
    assert main(["validate", str(path), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err
    assert "line 2: gold 'gout' is not a class" in err and "line 3: potassium: 99 mmol/L is outside" in err
    assert "Traceback" not in err
