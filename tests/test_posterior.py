"""The exact posterior: an independent brute-force reference, normalisation, calibration on
generated cases, and the edge cases (nothing assessed, impossible cases, bad input)."""

from __future__ import annotations

import importlib
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from crampdx.contract import SchemaError
from crampdx.synthetic import LABEL, component_log_joint, generate, log_evidence, posterior
from crampdx.synthetic.posterior import grouped_log_joint, posterior_from_codes
from crampdx.synthetic.tables import NEG, AgeTable, ConditionalTable, LevelTable, NormalTable

Z = 5.0  # statistical tolerances are Z standard errors
posterior_module = importlib.import_module("crampdx.synthetic.posterior")


# ------------------------------------------------------------------ brute-force reference

def _log_prob(table, value: float) -> np.ndarray:
    """log p(value | component) for every component, straight from the table's parameters
    with scipy (no design matrices, no log-weight matrices)."""
    if isinstance(table, AgeTable):
        low, high = table.edges[table.band], table.edges[table.band + 1]
        return np.where((low <= value) & (value < high), -np.log(high - low), -np.inf)
    if isinstance(table, LevelTable):
        with np.errstate(divide="ignore"):
            return np.log(table.probs[:, int(value)])
    if isinstance(table, NormalTable):
        if table.log_space:  # density of x = e^t: the density of t times 1/x
            t, low, high, jacobian = np.log(value), np.log(table.low), np.log(table.high), -np.log(value)
        else:
            t, low, high, jacobian = value, table.low, table.high, 0.0
        a, b = (low - table.loc) / table.scale, (high - table.loc) / table.scale
        return stats.truncnorm.logpdf(t, a, b, loc=table.loc, scale=table.scale) + jacobian
    raise TypeError(type(table))


def _child_table(table, parent_code: int):
    assert isinstance(table, ConditionalTable)
    variant = table.variants[parent_code]
    return table.default if variant is None else variant


def reference_log_joint(kb, row: dict) -> np.ndarray:
    """log p(observed findings, component k) for one case, by enumeration: the component's
    weight, plus each observed finding's log-probability; a dependency parent that is not
    assessed is summed out explicitly over its levels together with its observed children."""
    families = defaultdict(list)
    for fid, table in kb.tables.items():
        if isinstance(table, ConditionalTable):
            families[table.parent].append(fid)
    observed = {fid: v for fid, v in row.items() if not np.isnan(v)}
    total = kb.component_log_weight.copy()
    for fid, value in observed.items():
        table = kb.tables[fid]
        if fid in families or isinstance(table, ConditionalTable):
            continue
        total = total + _log_prob(table, value)
    for parent, kids in families.items():
        parent_probs = kb.tables[parent].probs
        seen = [c for c in kids if c in observed]

        def given(level, parent_probs=parent_probs, seen=seen):
            with np.errstate(divide="ignore"):
                term = np.log(parent_probs[:, level])
            for child in seen:
                term = term + _log_prob(_child_table(kb.tables[child], level), observed[child])
            return term

        if parent in observed:
            total = total + given(int(observed[parent]))
        elif seen:
            total = total + logsumexp([given(level) for level in range(parent_probs.shape[1])], axis=0)
    return total


def reference_posterior(kb, codes: np.ndarray):
    """Class posterior and log evidence, one case and one component at a time."""
    n_classes = len(kb.classes)
    post = np.empty((len(codes), n_classes))
    evidence = np.empty(len(codes))
    joints = np.empty((len(codes), kb.n_components))
    for i, case in enumerate(codes):
        joint = reference_log_joint(kb, dict(zip(kb.schema.ids, case)))
        joints[i] = joint
        top = joint.max()
        mass = np.zeros(n_classes)
        for k in range(kb.n_components):  # plain loop over components
            mass[kb.component_class[k]] += np.exp(joint[k] - top)
        post[i] = mass / mass.sum()
        evidence[i] = top + np.log(mass.sum())
    return post, evidence, joints


def _mask(frame, rng, rate, keep=("age", "sex", LABEL)):
    masked = frame.copy()
    for column in masked.columns:
        if column in keep:
            continue
        drop = rng.random(len(masked)) < rate
        masked.loc[drop, column] = np.nan
    return masked


@pytest.fixture(scope="module")
def reference_cases(kb):
    """30 cases that exercise every path: dependency parents observed and not, children
    observed without their parent, numbers at their hard limits, ages at band edges."""
    rng = np.random.default_rng(2024)
    pool = generate(6000, seed=99, knowledge=kb, complete=True)
    picks = []
    for cid, count in (("hemodialysis", 6), ("diabetic_polyneuropathy", 3), ("cirrhosis", 3), ("hcv_neuropathy", 3)):
        picks += list(pool.index[pool[LABEL] == cid][:count])
    others = pool.index[~pool.index.isin(picks)]
    picks += list(rng.choice(others, size=30 - len(picks) - 3, replace=False))
    frame = _mask(pool.loc[picks].reset_index(drop=True), rng, rate=0.35)
    # parents not assessed, children observed (the summed-out path)
    for i, parent in ((0, "hemodialysis"), (1, "hemodialysis"), (6, "diabetes"), (9, "cirrhosis"), (12, "hepatitis_c")):
        frame.loc[i, parent] = np.nan
    for i, child in ((0, "egfr"), (0, "cramps_with_dialysis"), (1, "hemoglobin"), (6, "glucose"), (9, "platelets"), (12, "alt")):
        frame.loc[i, child] = pool.loc[picks[i], child]
    # the parent observed with its children
    frame.loc[2, ["hemodialysis", "egfr", "cramps_with_dialysis"]] = pool.loc[picks[2], ["hemodialysis", "egfr", "cramps_with_dialysis"]].to_numpy()
    extra = pd.DataFrame(
        [
            {"age": 45.0, "sex": "female", "potassium": 1.5, "glucose": 1000.0},  # band edge, hard limits
            {"age": 105.0, "sex": "male", "egfr": 5.0},  # last band; a child alone
            {"age": 1.0, "cramp_timing": "nocturnal_at_rest", "tsh": 0.005},  # first band; lower hard limit
        ]
    )
    frame = pd.concat([frame, extra], ignore_index=True)
    return kb.schema.coerce(frame)


def test_reference_cases_cover_the_dependency_paths(reference_cases):
    parent_missing_child_seen = reference_cases["hemodialysis"].isna() & reference_cases["egfr"].notna()
    parent_seen_child_seen = reference_cases["hemodialysis"].notna() & reference_cases["egfr"].notna()
    assert parent_missing_child_seen.sum() >= 2 and parent_seen_child_seen.sum() >= 1
    assert (reference_cases["hemodialysis"] == "present").any()
    assert reference_cases["glucose"].notna().any() and reference_cases["diabetes"].isna().any()
    assert len(reference_cases) == 30


def test_posterior_matches_brute_force_reference(reference_cases, kb):
    codes = kb.schema.encode(reference_cases)
    expected_post, expected_evidence, _ = reference_posterior(kb, codes)
    assert np.isfinite(expected_evidence).all()
    got = posterior(reference_cases, knowledge=kb)
    np.testing.assert_allclose(got.to_numpy(), expected_post, rtol=0, atol=1e-8)
    np.testing.assert_allclose(log_evidence(reference_cases, knowledge=kb), expected_evidence, rtol=0, atol=1e-8)


def test_component_log_joint_matches_brute_force_reference(reference_cases, kb):
    codes = kb.schema.encode(reference_cases)
    _, _, expected = reference_posterior(kb, codes)
    got = component_log_joint(codes, kb)
    possible = np.isfinite(expected)
    assert possible.any() and (~possible).any()
    np.testing.assert_allclose(got[possible], expected[possible], rtol=1e-10, atol=1e-8)
    assert (got[~possible] < NEG / 2).all()  # impossible components stay impossible


@pytest.fixture(scope="module")
def tiny_reference_cases(tiny_kb):
    rng = np.random.default_rng(7)
    pool = generate(400, seed=8, knowledge=tiny_kb, complete=True)
    picks = list(pool.index[pool["hemodialysis"] == "present"][:5]) + list(pool.index[pool["diabetes"] == "present"][:5])
    picks += list(rng.choice(pool.index[~pool.index.isin(picks)], size=30 - len(picks), replace=False))
    frame = _mask(pool.loc[picks].reset_index(drop=True), rng, rate=0.4)
    frame.loc[[0, 1, 5, 6], ["hemodialysis", "diabetes"]] = np.nan
    frame.loc[[0, 1], "egfr"] = pool.loc[[picks[0], picks[1]], "egfr"].to_numpy()
    frame.loc[[5, 6], "glucose"] = pool.loc[[picks[5], picks[6]], "glucose"].to_numpy()
    return tiny_kb.schema.coerce(frame)


def test_posterior_matches_brute_force_reference_on_the_tiny_knowledge_base(tiny_reference_cases, tiny_kb):
    codes = tiny_kb.schema.encode(tiny_reference_cases)
    expected_post, expected_evidence, _ = reference_posterior(tiny_kb, codes)
    got = posterior(tiny_reference_cases, knowledge=tiny_kb)
    assert list(got.columns) == list(tiny_kb.class_ids)
    np.testing.assert_allclose(got.to_numpy(), expected_post, rtol=0, atol=1e-8)
    np.testing.assert_allclose(log_evidence(tiny_reference_cases, knowledge=tiny_kb), expected_evidence, rtol=0, atol=1e-8)


# ------------------------------------------------------------------------ basic properties

def test_rows_sum_to_one_and_columns_are_class_ids(cases_posterior, cases, kb):
    assert list(cases_posterior.columns) == list(kb.class_ids)
    assert cases_posterior.index.equals(cases.index)
    values = cases_posterior.to_numpy()
    assert np.isfinite(values).all()
    assert ((values >= 0) & (values <= 1)).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_posterior_keeps_the_index_and_ignores_the_label(kb):
    frame = generate(50, seed=4, knowledge=kb)
    frame.index = pd.Index([f"case-{i}" for i in range(50)])
    with_label = posterior(frame, knowledge=kb)
    without_label = posterior(frame.drop(columns=LABEL), knowledge=kb)
    assert with_label.index.equals(frame.index)
    pd.testing.assert_frame_equal(with_label, without_label)
    # column order in the input does not matter
    shuffled = frame[list(reversed(frame.columns))]
    pd.testing.assert_frame_equal(posterior(shuffled, knowledge=kb), with_label)


def test_posterior_from_codes_equals_posterior_of_the_frame(kb):
    frame = generate(200, seed=6, knowledge=kb)
    np.testing.assert_array_equal(posterior_from_codes(kb.schema.encode(frame), kb), posterior(frame, knowledge=kb).to_numpy())


def test_chunked_posterior_equals_one_pass(monkeypatch, kb):
    frame = generate(100, seed=12, knowledge=kb)
    whole = posterior(frame, knowledge=kb)
    monkeypatch.setattr(posterior_module, "_CHUNK", 7)
    chunked = posterior(frame, knowledge=kb)
    np.testing.assert_allclose(chunked.to_numpy(), whole.to_numpy(), rtol=0, atol=1e-12)  # BLAS blocking may differ


def test_each_case_alone_gets_what_it_gets_in_a_batch(kb):
    """Findings no case of a batch assessed are left out of the product: a case alone (its
    own few findings, families skipped, ranges under a missing parent) equals the same case
    in a batch that assesses everything."""
    codes = kb.schema.encode(generate(40, seed=21, knowledge=kb))
    codes[0] = np.nan  # nothing assessed
    egfr, dialysis = kb.schema.position("egfr"), kb.schema.position("hemodialysis")
    codes[1, :] = np.nan
    codes[1, egfr] = 35.0  # a child whose parent (hemodialysis) is not assessed: summed out
    glucose, diabetes = kb.schema.position("glucose"), kb.schema.position("diabetes")
    codes[2, :] = np.nan
    intervals = {2: {"glucose": (126.0, 400.0)}}  # a child's range under a parent not assessed
    whole = component_log_joint(codes, kb, intervals)
    for i in range(len(codes)):
        alone = component_log_joint(codes[i:i + 1], kb, {0: intervals[i]} if i in intervals else None)
        np.testing.assert_allclose(alone[0], whole[i], rtol=1e-10, atol=1e-8, err_msg=f"case {i}")
    assert np.isnan(codes[1, dialysis]) and np.isnan(codes[2, diabetes]) and np.isnan(codes[2, glucose])


def test_grouped_log_joint_gives_each_groups_rows_and_components_of_the_whole(kb):
    """Scoring groups of cases against groups of components (the atypical check's age bands)
    gives the same numbers as the whole product, families summed out and ranges included."""
    codes = kb.schema.encode(generate(60, seed=22, knowledge=kb))
    egfr, glucose = kb.schema.position("egfr"), kb.schema.position("glucose")
    codes[:20, kb.schema.position("hemodialysis")] = np.nan  # children known, parent summed out
    codes[::3, glucose] = np.nan
    intervals = {i: {"glucose": (126.0, 400.0)} for i in range(0, 60, 3)}
    codes[5, egfr] = np.nan
    intervals[5] = {**intervals.get(5, {}), "egfr": (5.0, 30.0)}
    whole = component_log_joint(codes, kb, intervals)
    rng = np.random.default_rng(3)
    groups = [(np.arange(0, 60, 2), slice(0, 300)), (np.arange(1, 60, 2), np.sort(rng.choice(kb.n_components, 200, replace=False))),
              (np.array([5, 0, 1]), slice(None))]
    for (rows, components), got in zip(groups, grouped_log_joint(codes, kb, groups, intervals)):
        np.testing.assert_allclose(got, whole[rows][:, components], rtol=1e-12, atol=1e-9)


def test_a_fully_unassessed_case_gets_the_prior(kb, knowledge_document):
    empty = pd.DataFrame(index=[0, 1])
    raw = np.array([knowledge_document["classes"][cid]["prior"]["value"] for cid in kb.class_ids])
    expected = np.tile(raw / raw.sum(), (2, 1))
    np.testing.assert_allclose(posterior(empty, knowledge=kb).to_numpy(), expected, rtol=1e-12)
    all_nan = kb.schema.decode(np.full((1, len(kb.schema)), np.nan))
    np.testing.assert_allclose(posterior(all_nan, knowledge=kb).to_numpy()[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(log_evidence(empty, knowledge=kb), 0.0, atol=1e-12)


@pytest.mark.filterwarnings("error")  # an impossible case is an answer, not a numerical accident
def test_an_impossible_case_gives_nan_row_and_minus_infinite_evidence(kb):
    cases = pd.DataFrame({"sex": ["male", "male"], "pregnancy": ["trimester_3", "not_pregnant"]})
    post = posterior(cases, knowledge=kb)
    assert post.iloc[0].isna().all()
    assert np.isfinite(post.iloc[1]).all() and post.iloc[1].sum() == pytest.approx(1.0)
    evidence = log_evidence(cases, knowledge=kb)
    assert evidence[0] == -np.inf and np.isfinite(evidence[1])
    # a pregnant 8-year-old is impossible too
    child = pd.DataFrame({"age": [8.0], "pregnancy": ["trimester_1"]})
    assert posterior(child, knowledge=kb).iloc[0].isna().all()


def test_extreme_hypokalemia_ranks_hypokalemia_first(kb):
    case = pd.DataFrame({"potassium": [2.5], "age": [60.0], "sex": ["female"]})
    post = posterior(case, knowledge=kb).iloc[0]
    assert post.idxmax() == "hypokalemia"
    assert post["hypokalemia"] > 0.5


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"urge_to_move": ["present"], "relieved_by_movement": ["present"], "cramp_timing": ["nocturnal_at_rest"],
          "relieved_by_stretching": ["absent"], "palpable_muscle_knot": ["absent"]}, "restless_legs"),
        ({"pregnancy": ["trimester_3"], "sex": ["female"], "age": [29.0]}, "pregnancy"),
        ({"hemodialysis": ["present"], "cramps_with_dialysis": ["during_or_after_sessions"]}, "hemodialysis"),
        ({"cramp_timing": ["exertional"], "relieved_by_rest": ["present"], "reproducible_walking_distance": ["present"],
          "ankle_brachial_index": [0.65]}, "pad_claudication"),
    ],
    ids=["restless-legs", "pregnancy", "hemodialysis", "claudication"],
)
def test_textbook_presentations_rank_their_class_first(kb, case, expected):
    post = posterior(pd.DataFrame(case), knowledge=kb).iloc[0]
    assert post.idxmax() == expected, post.sort_values().tail(3)


def test_posterior_raises_schema_error_on_unknown_column(kb):
    with pytest.raises(SchemaError, match="serum_unobtainium"):
        posterior(pd.DataFrame({"serum_unobtainium": [1.0]}), knowledge=kb)
    with pytest.raises(SchemaError, match="potassium"):
        posterior(pd.DataFrame({"potassium": [99.0]}), knowledge=kb)
    with pytest.raises(SchemaError, match="serum_unobtainium"):
        log_evidence(pd.DataFrame({"serum_unobtainium": [1.0]}), knowledge=kb)


def test_array_input_with_wrong_width_raises_value_error(kb):
    with pytest.raises(ValueError, match="columns"):
        posterior(np.zeros((2, 3)), knowledge=kb)


# ------------------------------------------------------------------ evidence is normalised

@pytest.mark.parametrize("fid", ["cramp_timing", "sex", "pregnancy", "cramps_with_dialysis", "hemodialysis"])
def test_evidence_of_one_categorical_finding_sums_to_one_over_its_levels(kb, fid):
    frame = pd.DataFrame({fid: list(kb.schema[fid].level_ids)})
    assert np.exp(log_evidence(frame, knowledge=kb)).sum() == pytest.approx(1.0, abs=1e-12)


def test_evidence_of_age_sums_to_one_over_whole_years(kb):
    low, high = kb.schema["age"].hard
    frame = pd.DataFrame({"age": np.arange(low, high + 1)})
    assert np.exp(log_evidence(frame, knowledge=kb)).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("fid", ["potassium", "ferritin", "egfr", "glucose"])
def test_evidence_of_one_numeric_finding_integrates_to_one(kb, fid):
    """Truncation constants, log-normal Jacobians and (for eGFR and glucose, children whose
    parent is not assessed) the summed-out parent all have to be right for this to hold."""
    finding = kb.schema[fid]
    low, high = finding.hard
    log_space = kb.tables[fid].default.log_space if isinstance(kb.tables[fid], ConditionalTable) else kb.tables[fid].log_space
    u = np.linspace(np.log(low), np.log(high), 6001) if log_space else np.linspace(low, high, 6001)
    x = np.exp(u) if log_space else u
    x[0], x[-1] = low, high  # exactly the hard limits (exp(log) may round outside)
    density = np.exp(log_evidence(pd.DataFrame({fid: x}), knowledge=kb))
    integrand = density * x if log_space else density  # dx = x du
    assert integrate.simpson(integrand, x=u) == pytest.approx(1.0, abs=1e-4)


# ------------------------------------------------------------------------ calibration

def test_top_class_probability_is_calibrated(cases_posterior, cases):
    """Expected calibration error of the top-class probability, 15 equal-width bins."""
    probs = cases_posterior.to_numpy()
    confidence = probs.max(axis=1)
    correct = np.asarray(cases_posterior.columns)[probs.argmax(axis=1)] == cases[LABEL].astype(str).to_numpy()
    bins = np.minimum((confidence * 15).astype(int), 14)
    ece = 0.0
    for b in range(15):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    assert ece < 0.01, ece
    assert 0.3 < correct.mean() < 0.99  # the test is not trivial: the task is neither hopeless nor solved


def test_ece_check_detects_a_miscalibrated_posterior(cases_posterior, cases):
    """Positive control for the check above: sharpening the posterior (temperature 0.7)
    must push the ECE over the threshold."""
    probs = cases_posterior.to_numpy() ** (1 / 0.7)
    probs /= probs.sum(axis=1, keepdims=True)
    confidence = probs.max(axis=1)
    correct = np.asarray(cases_posterior.columns)[probs.argmax(axis=1)] == cases[LABEL].astype(str).to_numpy()
    bins = np.minimum((confidence * 15).astype(int), 14)
    ece = sum(
        (bins == b).mean() * abs(correct[bins == b].mean() - confidence[bins == b].mean())
        for b in range(15) if (bins == b).any()
    )
    assert ece > 0.01


def test_mean_posterior_of_each_class_matches_its_frequency(cases_posterior, cases, kb):
    """Under the generator, E[p(c | x)] = P(c); the per-case variance of 1[y = c] - p(c | x)
    is p(1 - p), which gives the standard error."""
    probs = cases_posterior.to_numpy()
    onehot = (cases[LABEL].astype(str).to_numpy()[:, None] == np.asarray(kb.class_ids)[None, :]).astype(float)
    n = len(probs)
    difference = (onehot - probs).mean(axis=0)
    se = np.sqrt((probs * (1 - probs)).sum(axis=0)) / n
    z = np.abs(difference) / se
    assert (z <= Z).all(), dict(zip(kb.class_ids, z.round(1)))


def test_posterior_is_sharper_with_more_findings(cases_posterior, cases, complete_cases, kb):
    """The exact posterior of complete cases is more accurate than with missing findings
    (a sanity check that the evidence is used)."""
    complete_post = posterior(complete_cases.head(20_000), knowledge=kb).to_numpy()
    truth = complete_cases[LABEL].head(20_000).astype(str).to_numpy()
    accuracy_complete = (np.asarray(kb.class_ids)[complete_post.argmax(axis=1)] == truth).mean()
    accuracy_missing = (np.asarray(kb.class_ids)[cases_posterior.to_numpy().argmax(axis=1)] == cases[LABEL].astype(str).to_numpy()).mean()
    prior_accuracy = max(c.prior for c in kb.classes)
    assert accuracy_complete > accuracy_missing > prior_accuracy


def test_the_atypical_reference_has_every_class_equally(kb):
    from crampdx.synthetic.typicality import reference_cases

    codes, weights = reference_cases(kb, 1000, 20_011)
    assert len(codes) == 1000 and np.all(weights == 1.0)
    assert not np.isnan(codes[:, kb.schema.position("potassium")]).any()  # fully assessed
    again, _ = reference_cases(kb, 1000, 20_011)
    np.testing.assert_array_equal(codes, again)


def test_the_atypical_percentile_is_uniform_over_class_balanced_cases(kb):
    """Fresh cases drawn equally from every class, with one assessed set, fall below the
    10th percentile about 10 % of the time. Tolerance 0.06: binomial sd of 500 cases 0.013
    plus the reference's own sampling error (1,000 cases, sd about 0.01), with room."""
    from crampdx.synthetic.typicality import evidence_percentile, reference_cases

    fresh, _ = reference_cases(kb, 500, 4242)  # a different seed: independent of the reference
    assessed = [kb.schema.position(f) for f in ("cramp_timing", "potassium", "pedal_pulses", "urge_to_move",
                                                "age", "sex", "med_diuretic", "tsh")]
    rows = np.full_like(fresh, np.nan)
    rows[:, assessed] = fresh[:, assessed]
    percentiles = np.array([evidence_percentile(row, kb).percentile for row in rows])
    assert abs((percentiles < 0.10).mean() - 0.10) < 0.06
    assert abs(np.median(percentiles) - 0.5) < 0.08
    # settled early, the usual case is measured on the first 50 references (2 per class): the
    # same distribution, but the 50 references' own sampling error is shared by every case and
    # dominates the 500 cases' binomial sd of 0.013: where the 50 place the 10th percentile has
    # sd sqrt(0.1 * 0.9 / 50) = 0.04, the median sqrt(0.25 / 50) = 0.07; tolerances of 3 sd
    settled = np.array([evidence_percentile(row, kb, settle_at=0.01).percentile for row in rows])
    assert abs((settled < 0.10).mean() - 0.10) < 0.13
    assert abs(np.median(settled) - 0.5) < 0.21
