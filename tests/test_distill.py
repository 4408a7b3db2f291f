"""Soft targets: the weighted rows must reproduce each case's posterior."""

import numpy as np
import pytest

from crampdx.training.distill import soft_target_rows


@pytest.fixture
def posterior():
    rng = np.random.default_rng(3)
    return rng.dirichlet(np.full(25, 0.15), size=400)  # spread and peaked rows, many tiny classes


def test_each_case_carries_weight_one_and_its_probable_classes_exactly(posterior):
    rows = soft_target_rows(posterior, np.random.default_rng(0), threshold=0.02)
    assert np.bincount(rows.case, weights=rows.weight) == pytest.approx(np.ones(len(posterior)))
    assert (np.diff(rows.case) >= 0).all()  # rows of one case are adjacent
    own = posterior >= 0.02
    case, label = np.nonzero(own)
    weights = {(c, k): w for c, k, w in zip(rows.case, rows.label, rows.weight)}
    assert all(weights.get((c, k), 0) >= posterior[c, k] - 1e-12 for c, k in zip(case, label))
    assert rows.rows_per_case <= own.sum(axis=1).mean() + 1 + 1e-9


def test_improbable_classes_keep_their_expected_weight(posterior):
    """Averaged over draws, the weight each class receives equals its posterior probability
    (unbiased). 400 draws; a class drawn with chance pi = p / tail mass per draw is checked
    where it is expected at least 10 times, within 5 standard errors."""
    draws, threshold = 400, 0.05
    total = np.zeros_like(posterior)
    for seed in range(draws):
        rows = soft_target_rows(posterior, np.random.default_rng(seed), threshold=threshold)
        np.add.at(total, (rows.case, rows.label), rows.weight)
    mean = total / draws
    own = posterior >= threshold
    assert mean[own] == pytest.approx(posterior[own])
    mass = np.where(own, 0.0, posterior).sum(axis=1, keepdims=True)
    chance = np.where(own, 0.0, posterior) / np.where(mass > 0, mass, 1.0)
    checked = draws * chance >= 10
    standard_error = mass * np.sqrt(chance * (1 - chance) / draws)
    assert checked.sum() > 500
    assert (np.abs(mean - posterior)[checked] <= 5 * standard_error[checked]).all()


def test_a_one_hot_target_is_one_row_of_weight_one():
    targets = np.eye(4)[[2, 0, 3]]
    rows = soft_target_rows(targets, np.random.default_rng(0))
    assert rows.case.tolist() == [0, 1, 2] and rows.label.tolist() == [2, 0, 3] and rows.weight.tolist() == [1, 1, 1]


def test_soft_targets_bring_the_model_closer_to_the_exact_posterior(kb):
    """The reason for soft targets, on a small run: fitted to the exact posteriors of 4,000
    cases, the model is closer to the posterior on fresh cases than fitted to the sampled
    labels of the same cases (mean KL at least 15 % lower; measured 35–37 % lower over three
    seeds)."""
    from scipy.special import softmax

    from crampdx.synthetic import LABEL, generate, posterior_from_codes
    from crampdx.training.fit import Hyperparameters, fit_classifier

    def codes_labels_posterior(n, seed):
        frame = generate(n, seed=seed, knowledge=kb)
        codes = kb.schema.encode(frame)
        return codes, frame[LABEL].cat.codes.to_numpy(), posterior_from_codes(codes, kb)

    codes, labels, posterior = codes_labels_posterior(4000, seed=11)
    fresh, _, exact = codes_labels_posterior(3000, seed=12)
    hp = Hyperparameters(max_iter=60, min_samples_leaf=20)

    def kl(targets):
        model = fit_classifier(codes, targets, hp, seed=0, report=lambda line: None)
        proba = np.zeros_like(exact)
        proba[:, model.classes_] = softmax(model.decision_function(fresh), axis=1)
        terms = np.where(exact > 0, exact * (np.log(np.clip(exact, 1e-300, 1)) - np.log(np.clip(proba, 1e-15, 1))), 0.0)
        return terms.sum(axis=1).mean()

    soft, hard = kl(posterior), kl(np.eye(len(kb.classes))[labels])
    assert soft < 0.85 * hard, (soft, hard)
