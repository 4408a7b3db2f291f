"""The case generator: shape and types, reproducibility, constraints, missingness that
carries no evidence, and class frequencies and class-conditional rates that match the
knowledge file (statistical checks with tolerances of a few standard errors)."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crampdx.synthetic import LABEL, generate

Z = 5.0  # statistical tolerances are Z standard errors (two-sided p about 6e-7 each)
ALPHA = 1e-4  # chi-square tests of independence must not reject at this level

generate_module = importlib.import_module("crampdx.synthetic.generate")


# ------------------------------------------------------------------------ shape and types

def _check_columns_and_dtypes(frame, kb):
    assert list(frame.columns) == [*kb.schema.ids, LABEL]
    for finding in kb.schema:
        column = frame[finding.id]
        if finding.is_numeric:
            assert column.dtype == np.float64, finding.id
        else:
            assert isinstance(column.dtype, pd.CategoricalDtype), finding.id
            assert list(column.cat.categories) == list(finding.level_ids), finding.id
    assert isinstance(frame[LABEL].dtype, pd.CategoricalDtype)
    assert list(frame[LABEL].cat.categories) == list(kb.class_ids)


def test_columns_are_the_schema_ids_then_etiology_with_documented_dtypes(cases, kb):
    assert len(cases) == 100_000
    _check_columns_and_dtypes(cases, kb)
    assert cases[LABEL].notna().all()
    assert cases.index.equals(pd.RangeIndex(len(cases)))


def test_generate_zero_cases_gives_an_empty_typed_frame(kb):
    frame = generate(0, seed=1, knowledge=kb)
    assert len(frame) == 0
    _check_columns_and_dtypes(frame, kb)


@pytest.mark.parametrize("n", [-1, -100, 2.5, "10", None])
def test_invalid_n_raises_value_error(n):
    with pytest.raises(ValueError, match="n must be"):
        generate(n)


def test_numpy_integer_n_is_accepted(kb):
    assert len(generate(np.int64(7), seed=1, knowledge=kb)) == 7


# ------------------------------------------------------------------------ reproducibility

def test_same_seed_gives_identical_frames(kb):
    a, b = generate(2000, seed=42, knowledge=kb), generate(2000, seed=42, knowledge=kb)
    assert a.equals(b)
    assert (a.dtypes == b.dtypes).all()


def test_different_seeds_give_different_frames(kb):
    a, b = generate(2000, seed=42, knowledge=kb), generate(2000, seed=43, knowledge=kb)
    assert not a.equals(b)
    # and not only in a corner: most numeric columns differ somewhere
    numeric = [f.id for f in kb.schema if f.is_numeric and f.id != "age"]
    assert sum(not np.array_equal(a[f], b[f], equal_nan=True) for f in numeric) == len(numeric)


def test_chunked_generation_is_valid_and_reports_progress(monkeypatch, kb):
    monkeypatch.setattr(generate_module, "_CHUNK", 64)
    seen = []
    frame = generate(300, seed=5, knowledge=kb, progress=seen.append)
    assert seen == [64, 128, 192, 256, 300]
    _check_columns_and_dtypes(frame, kb)
    kb.schema.encode(frame)  # every value valid
    assert frame[LABEL].nunique() > 3


def test_generator_accepts_another_knowledge_base(tiny_kb):
    frame = generate(500, seed=3, knowledge=tiny_kb)
    _check_columns_and_dtypes(frame, tiny_kb)
    tiny_kb.schema.encode(frame)


# ------------------------------------------------------------------------ value validity

@pytest.mark.parametrize("which", ["cases", "complete_cases"])
def test_numeric_values_lie_within_hard_ranges(which, request, kb):
    frame = request.getfixturevalue(which)
    for finding in kb.schema:
        if finding.is_numeric:
            values = frame[finding.id].dropna().to_numpy()
            lo, hi = finding.hard
            assert len(values) > 0
            assert ((values >= lo) & (values <= hi)).all(), finding.id


def test_ages_are_whole_years_and_recorded_at_the_declared_rate(full_workup_cases, kb):
    age = full_workup_cases["age"].to_numpy()
    recorded = ~np.isnan(age)
    np.testing.assert_array_equal(age[recorded], np.floor(age[recorded]))
    for fid in ("age", "sex"):
        rate = kb.assessment_rates()[kb.schema.position(fid)]
        observed = full_workup_cases[fid].notna().mean()
        assert abs(observed - rate) <= Z * np.sqrt(rate * (1 - rate) / len(age)), fid


def test_complete_cases_have_no_missing_values(complete_cases):
    assert not complete_cases.isna().any().any()


def test_every_row_without_its_nans_encodes(cases, kb):
    """Each case on its own, NaNs dropped and as plain text: only known levels and
    in-range numbers."""
    for _, row in cases.head(25).iterrows():
        present = row.dropna()
        assert len(present) > 2  # age, sex, etiology at least
        single = pd.DataFrame([present.astype(object).to_dict()])
        codes = kb.schema.encode(single)
        assert np.isfinite(codes[0, [kb.schema.position(c) for c in present.index if c != LABEL]]).all()


def test_whole_frame_as_text_encodes_like_the_categoricals(cases, kb):
    sample = cases.head(20_000)
    np.testing.assert_array_equal(kb.schema.encode(sample.astype(object)), kb.schema.encode(sample))


# ------------------------------------------------------------------------ constraints

def _is(frame, fid, level):
    return (frame[fid] == level).to_numpy()


@pytest.mark.parametrize("which", ["cases", "complete_cases"])
def test_pregnancy_only_where_the_schema_allows_it(which, request, kb):
    """Never in men or outside the schema's ages (exactly), rare at the edges of reproductive age."""
    frame = request.getfixturevalue(which)
    pregnant = frame["pregnancy"].notna().to_numpy() & ~_is(frame, "pregnancy", "not_pregnant")
    age = frame["age"].to_numpy()
    low, high = kb.schema["pregnancy"].only_when.age
    assert pregnant.sum() > 100  # the check is not vacuous
    assert not (pregnant & _is(frame, "sex", "male")).any()
    assert not (pregnant & ((age < low) | (age > high))).any()
    women = _is(frame, "sex", "female")
    peak, edge = women & (age >= 20) & (age < 40), women & (age >= 50) & (age <= high)
    assert edge.sum() > 1000 and pregnant[edge].mean() < pregnant[peak].mean() / 5


def test_every_declared_constraint_holds_up_to_the_floor(complete_cases, knowledge_document):
    """Outside its allowed sex and ages a constrained finding takes `otherwise` except for the
    declared probability floor: at most (levels - 1) x floor, tested at three times that plus
    three binomial standard errors."""
    frame = complete_cases
    age = frame["age"].to_numpy()
    floor = knowledge_document["floors"]["probability"]
    for fid, rule in knowledge_document["constraints"].items():
        low, high = rule.get("age", [-np.inf, np.inf])
        allowed = (age >= low) & (age < high)
        if "sex" in rule:
            allowed &= _is(frame, "sex", rule["sex"])
        other = ~_is(frame, fid, rule["otherwise"])
        n_levels = frame[fid].nunique()
        bound = 3 * (max(n_levels, 2) - 1) * floor
        assert (~allowed).sum() > 100, fid
        assert other[~allowed].mean() <= bound + 3 * np.sqrt(bound / (~allowed).sum()), fid
        assert other[allowed].mean() > 2 * other[~allowed].mean(), fid  # and is commoner where it is allowed


def test_pregnancy_class_is_pregnant_women_of_reproductive_age(complete_cases):
    rows = complete_cases[complete_cases[LABEL] == "pregnancy"]
    assert len(rows) > 100
    assert (rows["sex"] == "female").all()
    assert (rows["pregnancy"] != "not_pregnant").mean() > 0.99  # all but the declared floor
    assert rows["age"].between(10, 64).all() and rows["age"].between(15, 44).mean() > 0.9


def test_dialysis_question_follows_dialysis_status(complete_cases):
    on_dialysis = _is(complete_cases, "hemodialysis", "present")
    not_applicable = _is(complete_cases, "cramps_with_dialysis", "not_on_dialysis")
    assert on_dialysis.sum() > 100
    assert (not_applicable != ~on_dialysis).mean() < 0.005  # all but the declared probability floor


# ------------------------------------------------------------------------ missingness

def _missing_vs_etiology(frame, fid, missing=None):
    missing = frame[fid].isna().to_numpy() if missing is None else missing
    table = pd.crosstab(missing, frame[LABEL].to_numpy())
    assert table.shape == (2, frame[LABEL].nunique())
    return stats.chi2_contingency(table.to_numpy())


MISSINGNESS_FINDINGS = ["potassium", "ankle_brachial_index", "urge_to_move", "pregnancy",
                        "cramps_with_dialysis", "ferritin", "pedal_pulses", "med_diuretic"]


@pytest.mark.parametrize("fid", MISSINGNESS_FINDINGS)
def test_missingness_is_independent_of_etiology(cases, fid):
    result = _missing_vs_etiology(cases, fid)
    assert result.pvalue > ALPHA, f"{fid}: chi2={result.statistic:.1f}, p={result.pvalue:.2g}"


def test_chi_square_check_detects_etiology_dependent_missingness(cases):
    """Positive control: an extra 20 % drop-out in one class of 4 % of cases is caught."""
    rng = np.random.default_rng(0)
    missing = cases["potassium"].isna().to_numpy().copy()
    in_class = (cases[LABEL] == "restless_legs").to_numpy()
    missing |= in_class & (rng.random(len(cases)) < 0.2)
    result = _missing_vs_etiology(cases, "potassium", missing)
    assert result.pvalue < ALPHA
    # and the untouched column on the same rows does not reject
    assert _missing_vs_etiology(cases, "potassium").pvalue > ALPHA


def test_assessment_rates_match_the_knowledge_base(full_workup_cases, kb):
    rates = kb.assessment_rates()
    n = len(full_workup_cases)
    for finding, rate in zip(kb.schema, rates):
        observed = full_workup_cases[finding.id].notna().mean()
        se = np.sqrt(rate * (1 - rate) / n)
        assert abs(observed - rate) <= Z * se + 1e-12, (finding.id, observed, rate)


def test_findings_of_a_panel_are_assessed_together(full_workup_cases, kb):
    codes = kb.schema.encode(full_workup_cases)
    for rate, positions in kb.panels:
        missing = np.isnan(codes[:, list(positions)])
        assert (missing == missing[:, :1]).all(), [kb.schema.ids[p] for p in positions]


def test_separate_panels_are_assessed_independently(full_workup_cases):
    # electrolytes and the bone panel: joint rate = product of rates (a brief workup's thinning
    # correlates every pair, as a short workup assesses few of everything)
    a = full_workup_cases["potassium"].notna().to_numpy()
    b = full_workup_cases["pth"].notna().to_numpy()
    table = pd.crosstab(a, b).to_numpy()
    assert stats.chi2_contingency(table).pvalue > ALPHA


# ------------------------------------------------------------------------ class frequencies

def test_class_frequencies_match_normalised_priors(cases, kb):
    n = len(cases)
    counts = cases[LABEL].value_counts().reindex(list(kb.class_ids)).to_numpy()
    priors = np.array([c.prior for c in kb.classes])
    np.testing.assert_allclose(priors.sum(), 1.0)
    se = np.sqrt(priors * (1 - priors) / n)
    deviation = np.abs(counts / n - priors) / se
    assert (deviation <= Z).all(), dict(zip(kb.class_ids, deviation.round(1)))


def test_class_sex_ratios_match_the_knowledge_file(complete_cases, knowledge_document):
    for cid in ("idiopathic_nocturnal", "heat_exertional", "restless_legs", "thyroid_disease", "pad_claudication"):
        raw = knowledge_document["classes"][cid]
        assert "profiles" not in raw or all("female" not in p for p in raw["profiles"].values())
        p = raw["female"]["p"]
        rows = complete_cases[LABEL] == cid
        observed = (complete_cases.loc[rows, "sex"] == "female").mean()
        se = np.sqrt(p * (1 - p) / rows.sum())
        assert abs(observed - p) <= Z * se, (cid, observed, p)


def test_class_age_bands_follow_the_truncated_normal(complete_cases, kb, knowledge_document):
    edges = np.asarray(knowledge_document["demographics"]["age_band_edges"], dtype=float)
    for cid in ("idiopathic_nocturnal", "pregnancy", "jia"):
        age = knowledge_document["classes"][cid]["age"]
        lo, hi = age.get("min", edges[0]), age.get("max", edges[-1])
        dist = stats.truncnorm((lo - age["mean"]) / age["sd"], (hi - age["mean"]) / age["sd"], loc=age["mean"], scale=age["sd"])
        floor = knowledge_document["floors"]["age"]  # that share spread evenly over the bands inside min-max
        inside = (edges[:-1] < hi) & (edges[1:] > lo)
        expected = (1 - floor) * np.diff(dist.cdf(edges)) / np.diff(dist.cdf(edges)).sum() + floor * inside / inside.sum()
        ages = complete_cases.loc[complete_cases[LABEL] == cid, "age"].to_numpy()
        observed = np.histogram(ages, bins=edges)[0]
        assert observed[expected == 0].sum() == 0, cid
        keep = expected > 0
        expected_counts = expected[keep] / expected[keep].sum() * len(ages)
        if keep.sum() > 1:
            assert stats.chisquare(observed[keep], expected_counts).pvalue > ALPHA, cid


# ------------------------------------------------------------------------ class-conditional rates

def _class_rows(frame, cid):
    rows = frame[frame[LABEL] == cid]
    assert len(rows) > 300, cid
    return rows


def test_urge_to_move_in_restless_legs_matches_the_file(complete_cases, knowledge_document):
    p = knowledge_document["classes"]["restless_legs"]["findings"]["urge_to_move"]["p"]
    rows = _class_rows(complete_cases, "restless_legs")
    observed = (rows["urge_to_move"] == "present").mean()
    se = np.sqrt(p * (1 - p) / len(rows))
    assert abs(observed - p) <= Z * se, (observed, p)


def _truncated(spec, finding):
    """The distribution a numeric spec describes, in t-space (x or log x), truncated."""
    lo, hi = finding.hard
    if spec["dist"] == "normal":
        loc, scale = spec["mean"], spec["sd"]
    else:
        loc, scale, lo, hi = np.log(spec["median"]), spec["log_sd"], np.log(lo), np.log(hi)
    return stats.truncnorm((lo - loc) / scale, (hi - loc) / scale, loc=loc, scale=scale)


def _assert_mean_matches(values, dist, label):
    se = dist.std() / np.sqrt(len(values))
    assert abs(values.mean() - dist.mean()) <= Z * se, (label, values.mean(), dist.mean())
    # and the spread (normal-theory SE of a standard deviation: sd / sqrt(2n))
    assert abs(values.std() - dist.std()) <= Z * dist.std() / np.sqrt(2 * len(values)), (label, values.std(), dist.std())


def test_potassium_in_hypokalemia_matches_the_file(complete_cases, knowledge_document, kb):
    spec = knowledge_document["classes"]["hypokalemia"]["findings"]["potassium"]
    rows = _class_rows(complete_cases, "hypokalemia")
    _assert_mean_matches(rows["potassium"].to_numpy(), _truncated(spec, kb.schema["potassium"]), "potassium")


def test_sodium_in_hyponatremia_matches_the_file(complete_cases, knowledge_document, kb):
    spec = knowledge_document["classes"]["hyponatremia"]["findings"]["sodium"]
    rows = _class_rows(complete_cases, "hyponatremia")
    _assert_mean_matches(rows["sodium"].to_numpy(), _truncated(spec, kb.schema["sodium"]), "sodium")


def test_thyroid_profiles_mix_with_their_weights_and_log_normal_tsh(complete_cases, knowledge_document, kb):
    # hypothyroid and hyperthyroid profiles separate cleanly on TSH (medians 14 and 0.03)
    profiles = knowledge_document["classes"]["thyroid_disease"]["profiles"]
    spec = profiles["hypothyroidism"]["findings"]["tsh"]
    rows = _class_rows(complete_cases, "thyroid_disease")
    log_tsh = np.log(rows["tsh"].to_numpy())
    hypo = log_tsh[log_tsh > np.log(1.0)]
    share = len(hypo) / len(log_tsh)
    w = profiles["hypothyroidism"]["weight"]["value"]
    # (each profile puts < 1e-4 of its mass on the other side of TSH = 1, far below one SE)
    assert abs(share - w) <= Z * np.sqrt(w * (1 - w) / len(log_tsh)), share
    se_median = np.sqrt(np.pi / 2) * spec["log_sd"] / np.sqrt(len(hypo))  # SE of a normal sample median
    assert abs(np.median(hypo) - np.log(spec["median"])) <= Z * se_median


def test_hemodialysis_lowers_egfr_through_the_dependency(complete_cases, knowledge_document, kb):
    spec = knowledge_document["dependencies"]["hemodialysis"]["when"]["present"]["egfr"]
    dist = _truncated(spec, kb.schema["egfr"])
    rows = _class_rows(complete_cases, "hemodialysis")
    assert (rows["hemodialysis"] == "present").mean() > 0.99  # p = 1.0 in the file, less the declared floor
    rows = rows[rows["hemodialysis"] == "present"]
    _assert_mean_matches(rows["egfr"].to_numpy(), dist, "egfr in hemodialysis class")
    # whatever the class: every patient on dialysis follows the dependency
    others = complete_cases[(complete_cases["hemodialysis"] == "present") & (complete_cases[LABEL] != "hemodialysis")]
    assert len(others) > 100
    _assert_mean_matches(others["egfr"].to_numpy(), dist, "egfr on dialysis, other classes")
    off = complete_cases.loc[complete_cases["hemodialysis"] == "absent", "egfr"]
    assert off.mean() > 60 > dist.mean() + Z * dist.std() / np.sqrt(len(others))


def test_diabetes_raises_glucose_through_the_dependency(complete_cases, knowledge_document, kb):
    spec = knowledge_document["dependencies"]["diabetes"]["when"]["present"]["glucose"]
    dist = _truncated(spec, kb.schema["glucose"])
    diabetic = complete_cases.loc[complete_cases["diabetes"] == "present", "glucose"].to_numpy()
    assert len(diabetic) > 300
    _assert_mean_matches(np.log(diabetic), dist, "log glucose with diabetes")


def test_background_by_age_rates_apply(complete_cases, knowledge_document):
    """A class that does not mention diabetes uses the background's age-dependent rate."""
    spec = knowledge_document["background"]["diabetes"]
    assert "diabetes" not in knowledge_document["classes"]["idiopathic_nocturnal"]["findings"]
    rows = _class_rows(complete_cases, "idiopathic_nocturnal")
    thresholds = dict(spec["by_age"])
    for low, high in ((45, 55), (65, 75)):
        in_band = rows[(rows["age"] >= low) & (rows["age"] < high)]
        p = thresholds[low]
        observed = (in_band["diabetes"] == "present").mean()
        assert abs(observed - p) <= Z * np.sqrt(p * (1 - p) / len(in_band)), (low, observed, p)
