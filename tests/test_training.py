"""Training: temperature scaling, the fitted model's contract, labelled data validation and
the evaluation figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from crampdx.contract import SchemaError
from crampdx.synthetic import LABEL, generate
from crampdx.training.metrics import (
    calibration_bins_against_posterior,
    calibration_error_against_posterior,
    classification_metrics,
    expected_calibration_error,
    posterior_comparison,
)
from crampdx.training.data import read_labelled_cases
from crampdx.training.fit import fit_temperature


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(40_000, 6))
    true_t = 2.0
    labels = np.array([rng.choice(6, p=p) for p in softmax(logits / true_t, axis=1)])
    # 40,000 draws pin T to within a few percent (its standard error is about 1 %).
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.05)


def test_temperature_scaling_keeps_the_ranking(tiny_diagnoser, kb):
    codes = kb.schema.encode(generate(500, seed=11))
    raw = tiny_diagnoser.estimator_.decision_function(codes)
    np.testing.assert_array_equal(tiny_diagnoser.predict_proba_codes(codes).argmax(axis=1), raw.argmax(axis=1))
    np.testing.assert_allclose(tiny_diagnoser.scores(codes) * tiny_diagnoser.temperature_, raw, rtol=1e-12, atol=1e-12)


def test_categorical_findings_enter_as_numeric_codes(tiny_diagnoser):
    # shap issue #3436: native categorical splits are silently mis-explained
    assert tiny_diagnoser.estimator_.categorical_features is None
    assert tiny_diagnoser.estimator_.is_categorical_ is None or not tiny_diagnoser.estimator_.is_categorical_.any()


def test_predict_proba_contract(tiny_diagnoser, kb):
    cases = generate(300, seed=12)
    proba = tiny_diagnoser.predict_proba(cases)
    assert list(proba.columns) == list(kb.class_ids)
    assert proba.index.equals(cases.index)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # the label is optional and ignored; absent columns count as not assessed
    pd.testing.assert_frame_equal(proba, tiny_diagnoser.predict_proba(cases.drop(columns=LABEL)))
    partial = cases[["potassium", "age"]]
    assert np.isfinite(tiny_diagnoser.predict_proba(partial).to_numpy()).all()


def test_predict_proba_rejects_bad_input_naming_the_column(tiny_diagnoser):
    with pytest.raises(SchemaError, match="potassium"):
        tiny_diagnoser.predict_proba(pd.DataFrame({"potassium": [99.0]}))


def test_tiny_model_learns_far_above_chance(tiny_model_dir):
    import json

    metrics = json.loads((tiny_model_dir / "manifest.json").read_text())["metrics"]
    # 25 classes, idiopathic about 30 %: a model that learned nothing tops out near 0.3. The
    # generator's mix is mostly brief workups, so the ceiling is the exact posterior's figure.
    posterior = metrics["posterior"]
    assert metrics["model"]["top1_accuracy"] > 0.45
    assert metrics["model"]["top1_accuracy"] > 0.85 * posterior["posterior_top1_accuracy"]
    assert metrics["model"]["top3_accuracy"] > 0.85 * posterior["posterior_top3_accuracy"]


# ------------------------------------------------------------------- labelled data

@pytest.fixture
def labelled_csv(tmp_path):
    path = tmp_path / "labelled.csv"
    generate(40, seed=5).to_csv(path, index=False)
    return path


def _rewrite(path, edit):
    frame = edit(pd.read_csv(path))
    frame.to_csv(path, index=False)


def test_labelled_cases_round_trip(labelled_csv, kb):
    frame = read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)
    np.testing.assert_allclose(kb.schema.encode(frame), kb.schema.encode(generate(40, seed=5)), rtol=1e-12)


def test_labelled_cases_with_a_wrong_column_name_it(labelled_csv, kb):
    _rewrite(labelled_csv, lambda f: f.rename(columns={"potassium": "kalium"}))
    with pytest.raises(SchemaError, match="unknown column 'kalium'"):
        read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)


def test_labelled_cases_with_an_impossible_value_name_row_and_column(labelled_csv, kb):
    _rewrite(labelled_csv, lambda f: f.assign(sodium=[140.0] * 6 + [400.0] + [140.0] * 33))
    with pytest.raises(SchemaError, match=r"sodium, row 7: outside the plausible range 100–180 mmol/L"):
        read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)


def test_labelled_cases_with_an_unknown_class_name_the_row(labelled_csv, kb):
    _rewrite(labelled_csv, lambda f: f.assign(**{LABEL: ["gout" if i == 2 else v for i, v in enumerate(f[LABEL])]}))
    with pytest.raises(SchemaError, match=r"etiology, rows 3: unknown class 'gout'"):
        read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)


def test_labelled_cases_without_labels_say_so(labelled_csv, kb):
    _rewrite(labelled_csv, lambda f: f.drop(columns=LABEL))
    with pytest.raises(SchemaError, match="missing column 'etiology'"):
        read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)


def test_labelled_cases_accept_labels_and_yes_no_like_a_json_case(tmp_path, kb):
    path = tmp_path / "labelled.csv"
    path.write_text("Potassium,Leg weakness,med_diuretic,Pedal pulses,etiology\n"
                    "2.6,yes,true,Absent,hypokalemia\n"
                    "4.2,no,0,normal,idiopathic_nocturnal\n")
    frame = read_labelled_cases(path, kb.schema, kb.class_ids)
    assert list(frame["weakness_reported"]) == ["present", "absent"]
    assert list(frame["med_diuretic"]) == ["present", "absent"]
    assert list(frame["pedal_pulses"]) == ["absent", "normal"]
    assert list(frame["potassium"]) == [2.6, 4.2] and list(frame[LABEL]) == ["hypokalemia", "idiopathic_nocturnal"]


def test_labelled_cases_with_a_misspelt_column_get_a_suggestion(labelled_csv, kb):
    _rewrite(labelled_csv, lambda f: f.rename(columns={"potassium": "potasium"}))
    with pytest.raises(SchemaError, match="unknown column 'potasium'; did you mean 'potassium'"):
        read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)


def test_labelled_cases_without_rows_say_so(labelled_csv, kb):
    _rewrite(labelled_csv, lambda f: f.head(0))
    with pytest.raises(SchemaError, match="labelled.csv holds no cases"):
        read_labelled_cases(labelled_csv, kb.schema, kb.class_ids)


def test_iterations_text_tells_early_stopping_from_the_cap():
    from crampdx.training.fit import iterations_text

    assert iterations_text(312, 2000) == "stopped early after 312 iterations"
    assert iterations_text(20, 20) == "reached the --max-iter cap of 20 iterations without early stopping"


# ------------------------------------------------------------------------- metrics

def test_ece_is_small_for_calibrated_and_large_for_overconfident_predictions():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(5), size=50_000)
    labels = np.array([rng.choice(5, p=p) for p in proba])
    assert expected_calibration_error(labels, proba) < 0.01
    sharpened = softmax(np.log(proba) * 4, axis=1)
    assert expected_calibration_error(labels, sharpened) > 0.1


def test_posterior_comparison_of_the_posterior_with_itself():
    rng = np.random.default_rng(2)
    post = rng.dirichlet(np.ones(4), size=2000)
    labels = post.argmax(axis=1)
    figures = posterior_comparison(labels, post, post)
    assert figures["top1_ratio_to_posterior"] == 1.0
    assert figures["mean_kl_posterior_to_model"] == pytest.approx(0.0, abs=1e-12)
    assert figures["top1_agreement_with_posterior"] == 1.0
    uniform = np.full_like(post, 0.25)
    assert posterior_comparison(labels, uniform, post)["mean_kl_posterior_to_model"] > 0.1


def test_the_posteriors_own_calibration_error_is_reported_as_the_noise_floor():
    """Labels drawn from a posterior: its ECE is sampling noise only (20,000 cases, 15 bins:
    expected well under 0.02), reported beside the model's as ``posterior_ece``."""
    rng = np.random.default_rng(4)
    post = rng.dirichlet(np.full(5, 0.5), size=20_000)
    labels = (rng.random(len(post))[:, None] > post.cumsum(axis=1)).sum(axis=1)
    figures = posterior_comparison(labels, post, post)
    assert figures["posterior_ece"] == pytest.approx(expected_calibration_error(labels, post))
    assert 0 < figures["posterior_ece"] < 0.02
    assert expected_calibration_error(labels, softmax(np.log(post) * 3, axis=1)) > 5 * figures["posterior_ece"]


def test_the_calibration_error_against_the_posterior_is_the_label_ece_without_its_noise():
    """5,000 cases with a known posterior; labels redrawn 200 times from it. The bins depend on
    the model's probabilities only, so each bin's accuracy from labels has the bin's mean
    posterior probability of the model's top class as its expectation: the ECE from labels
    then averages to the figure against the posterior, up to the absolute values folding the
    labels' noise upwards (small here: the model's gaps are large against that noise; over
    other seeds the mean lay 0.0000-0.0011 above, its standard error ~0.0005). The model is
    overconfident and ranks another cause first in ~16 % of the cases, so the figure must
    use the posterior of the model's top cause, not the posterior's own maximum (that would
    read ~0.018 lower). The exact posterior scores 0 against itself where its ECE from labels
    is the noise alone."""
    rng = np.random.default_rng(12)
    post = rng.dirichlet(np.full(5, 0.5), size=5000)
    model = softmax(np.log(post) * 2 + rng.normal(scale=0.7, size=post.shape), axis=1)
    assert (model.argmax(axis=1) != post.argmax(axis=1)).mean() > 0.1
    assert calibration_error_against_posterior(post, post) == 0.0
    against = posterior_comparison(post.argmax(axis=1), model, post)["ece_against_posterior"]
    assert against == calibration_error_against_posterior(model, post) > 0.1
    from_labels, own = [], []
    for _ in range(200):
        labels = np.minimum((rng.random(len(post))[:, None] > post.cumsum(axis=1)).sum(axis=1), 4)
        from_labels.append(expected_calibration_error(labels, model))
        own.append(expected_calibration_error(labels, post))
    assert abs(np.mean(from_labels) - against) < 0.003
    assert np.mean(own) > 0.005  # the labels' noise alone, which the figure against the posterior is free of
    bins = calibration_bins_against_posterior(model, post)  # the reliability diagram's second curve
    gaps = np.abs(np.subtract(bins["accuracy"], bins["confidence"]))
    assert np.average(gaps, weights=bins["count"]) == pytest.approx(against)
    exact = calibration_bins_against_posterior(post, post)
    np.testing.assert_allclose(exact["accuracy"], exact["confidence"])


def test_classification_metrics_confusion_matrix_counts_every_case():
    proba = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0], [0.5, 0.3, 0.2, 0.0]])
    figures = classification_metrics(np.array([0, 1, 2]), proba, ["a", "b", "c", "d"])
    assert figures["confusion_matrix"] == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert figures["top1_accuracy"] == pytest.approx(2 / 3)
    assert figures["per_class"]["c"]["recall"] == 0.0


def test_calibration_hold_out_is_independent_of_the_class():
    """The held-out cases must be a random sample of the training cases: the same class mix.
    (A split drawn from the generator's own stream picked one class only.)"""
    from scipy.stats import chi2_contingency

    from crampdx.training.train import calibration_mask

    for seed in (0, 1, 7):
        frame = generate(60_000, seed=seed)
        held_out = calibration_mask(len(frame), seed)
        assert abs(held_out.mean() - 0.1) < 5 * np.sqrt(0.1 * 0.9 / len(frame))
        table = pd.crosstab(held_out, frame[LABEL].astype(str)).to_numpy()
        assert chi2_contingency(table).pvalue > 1e-4


def test_the_model_card_says_how_the_cases_taught_the_model():
    """From the recorded count of synthetic cases, not from the wording of the data source
    (a user's file may be called synthetic.csv)."""
    from crampdx.training.model_card import _targets_text

    assert _targets_text({"synthetic_cases": 0, "data_source": "200 labelled cases from synthetic.csv"}) == \
        "Fitted to each case's label."
    assert "exact posterior" in _targets_text({"synthetic_cases": 40_000, "data_source": "40,000 synthetic cases"})
    flattened = _targets_text({"synthetic_cases": 50_000, "prior_power": 0.6})
    assert "power 0.6" in flattened and "own priors" in flattened
    for plain in ({"synthetic_cases": 50_000, "prior_power": 1.0}, {"synthetic_cases": 50_000}):
        assert "power" not in _targets_text(plain)


def test_the_expected_top1_ratio_is_the_label_ratio_without_its_noise():
    """One set of 5,000 cases with a known posterior and a model that misranks some of them;
    labels redrawn 400 times from the posterior. The expected ratio does not depend on the
    labels at all; the ratio from labels scatters around it: its mean over the 400 draws lies
    within 5 standard errors of the expected one (a false alarm about once in 3 million)."""
    rng = np.random.default_rng(11)
    post = rng.dirichlet(np.full(5, 0.5), size=5000)
    model = softmax(np.log(post) + rng.normal(scale=0.5, size=post.shape), axis=1)
    from_labels, expected = [], set()
    for _ in range(400):
        labels = np.minimum((rng.random(len(post))[:, None] > post.cumsum(axis=1)).sum(axis=1), 4)
        figures = posterior_comparison(labels, model, post)
        from_labels.append(figures["top1_ratio_to_posterior"])
        expected.add(figures["expected_top1_ratio_to_posterior"])
    (ratio,) = expected
    assert ratio < 0.99  # the model does lose accuracy: the comparison can fail
    assert abs(np.mean(from_labels) - ratio) < 5 * np.std(from_labels, ddof=1) / np.sqrt(len(from_labels))
    assert np.std(from_labels, ddof=1) > 0.002  # the labels' noise the expected ratio is free of
