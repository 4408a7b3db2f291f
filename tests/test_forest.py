"""The compiled forest scores exactly as scikit-learn does (it replaces it for small batches)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from crampdx.model.attribution import TreeAttribution
from crampdx.model.batch_forest import HeapForest
from crampdx.model.diagnoser import SMALL_BATCH
from crampdx.model.forest import CompiledForest
from crampdx.synthetic import generate


@pytest.fixture(scope="module")
def forest(tiny_diagnoser):
    return CompiledForest(tiny_diagnoser.estimator_)


def test_scores_equal_scikit_learn_on_generated_cases_with_missing_findings(tiny_diagnoser, forest):
    codes = tiny_diagnoser.schema.encode(generate(400, seed=11))
    assert np.isnan(codes).any() and (~np.isnan(codes)).any()
    np.testing.assert_allclose(forest.decision_function(codes), tiny_diagnoser.estimator_.decision_function(codes),
                               rtol=0, atol=1e-9)


def test_values_on_a_threshold_go_left_and_missing_values_follow_the_learned_side(tiny_diagnoser, forest):
    """Cases whose values sit exactly on split thresholds, or are missing, one feature at a time."""
    rng = np.random.default_rng(5)
    splits = ~forest.is_leaf_
    features, thresholds = forest.feature_[splits], forest.threshold_[splits]
    chosen = rng.choice(len(features), size=300, replace=False)
    base = tiny_diagnoser.schema.encode(generate(300, seed=12))
    codes = base.copy()
    codes[np.arange(300), features[chosen]] = thresholds[chosen]
    codes[::3, features[chosen][::3]] = np.nan
    np.testing.assert_allclose(forest.decision_function(codes), tiny_diagnoser.estimator_.decision_function(codes),
                               rtol=0, atol=1e-9)


def test_one_case_and_large_batches_agree(tiny_diagnoser):
    codes = tiny_diagnoser.schema.encode(generate(SMALL_BATCH + 10, seed=13))
    whole = tiny_diagnoser.scores(codes)  # the batch path (scikit-learn, or compiled batches once numba has started)
    np.testing.assert_allclose(tiny_diagnoser.scores(codes[:SMALL_BATCH]), whole[:SMALL_BATCH], rtol=0, atol=1e-9)
    np.testing.assert_allclose(tiny_diagnoser.scores(codes[:1]), whole[:1], rtol=0, atol=1e-9)


def test_a_model_with_categorical_splits_is_refused():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 4, 500), rng.normal(size=500)]).astype(float)
    y = (X[:, 0] == 2).astype(int) + (X[:, 1] > 0)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(X, y)
    with pytest.raises(ValueError, match="categorical"):
        CompiledForest(model)


def test_a_case_walks_only_the_trees_its_findings_can_change(tiny_diagnoser, forest):
    """Nothing assessed walks no tree and scores as scikit-learn does; a sparse case walks
    fewer trees than the forest has and still scores exactly as scikit-learn does."""
    empty = np.full((1, len(tiny_diagnoser.schema)), np.nan)
    assert len(forest.trees_to_walk(empty)) == 0
    np.testing.assert_allclose(forest.decision_function(empty), tiny_diagnoser.estimator_.decision_function(empty),
                               rtol=0, atol=1e-9)
    codes = tiny_diagnoser.schema.encode(generate(200, seed=14))
    rng = np.random.default_rng(3)
    sparse = np.where(rng.random(codes.shape) < 0.1, codes, np.nan)  # about a tenth of each case's findings
    walked = [len(forest.trees_to_walk(row[None])) for row in sparse]
    assert 0 < np.median(walked) < forest.n_trees_
    for row in sparse[:50]:
        np.testing.assert_allclose(forest.decision_function(row[None]), tiny_diagnoser.estimator_.decision_function(row[None]),
                                   rtol=0, atol=1e-9)


@pytest.mark.parametrize("n_classes, max_iter", [(2, 3), (4, 1)])
def test_small_and_binary_models_score_as_scikit_learn_does(n_classes, max_iter):
    """One tree per iteration (binary), or one iteration: the empty-case shortcut still holds,
    for single cases and for batches with missing values."""
    rng = np.random.default_rng(n_classes)
    X = rng.integers(0, 3, size=(600, 6)).astype(float)
    y = (X[:, 0] + X[:, 1] * (X[:, 2] > 0)) % n_classes
    model = HistGradientBoostingClassifier(max_iter=max_iter, max_depth=3, early_stopping=False).fit(X, y)
    forest = CompiledForest(model)
    test = np.where(rng.random((200, 6)) < 0.4, np.nan, rng.integers(0, 3, size=(200, 6)).astype(float))
    expected = model.decision_function(test).reshape(len(test), -1)
    np.testing.assert_allclose(forest.decision_function(test), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(forest.decision_function(test[:1]), expected[:1], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="6 columns"):
        forest.decision_function(test[:, :5])


def test_infinite_values_and_splits_of_the_missing_values_follow_scikit_learn():
    """A split that sends the missing values one way and every value the other has threshold
    +inf: +inf, -inf, missing and values on the thresholds go where scikit-learn sends them,
    one case at a time and in batches."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(800, 4)).astype(float)
    X[rng.random(X.shape) < 0.3] = np.nan
    y = (np.isnan(X[:, 0]) + 2 * (X[:, 1] > 0) + np.isnan(X[:, 2])) % 3
    model = HistGradientBoostingClassifier(max_iter=10, max_depth=3, early_stopping=False).fit(X, y)
    forest = CompiledForest(model)
    assert np.isposinf(forest.threshold_[~forest.is_leaf_]).any()
    test = rng.choice([np.nan, np.inf, -np.inf, 0.0, 1.0, 2.0, 0.5], size=(300, 4))
    expected = model.decision_function(test)
    np.testing.assert_allclose(forest.decision_function(test), expected, rtol=0, atol=1e-9)
    for row in range(0, 300, 7):
        np.testing.assert_allclose(forest.decision_function(test[row:row + 1]), expected[row:row + 1], rtol=0, atol=1e-9)


def _single_leaf_models():
    """Models whose every tree is one leaf: too few rows for two leaves of ``min_samples_leaf``
    (as ``crampdx train --data`` on a tiny file), or constant findings; binary and multi-class."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 5))
    X[rng.random(X.shape) < 0.3] = np.nan
    y = rng.choice(4, size=60, p=[0.5, 0.3, 0.15, 0.05])
    yield HistGradientBoostingClassifier(max_iter=6, min_samples_leaf=31).fit(X, y), X
    yield HistGradientBoostingClassifier(max_iter=6, min_samples_leaf=31).fit(X, y > 0), X
    yield HistGradientBoostingClassifier(max_iter=4, min_samples_leaf=2).fit(np.ones_like(X), y), X


def test_a_model_whose_trees_never_split_scores_as_scikit_learn_does_to_the_bit():
    """Every tree of depth 0 (no path to index, no step to walk): the compiled forest and the
    heaps give scikit-learn's scores, for cases with any findings assessed."""
    for model, X in _single_leaf_models():
        assert all(len(tree.nodes) == 1 for trees in model._predictors for tree in trees)
        expected = model._raw_predict(X)
        forest = CompiledForest(model)
        assert forest.depth_ == 0 and len(forest.trees_to_walk(X)) == 0
        assert np.array_equal(forest.decision_function(X), expected)
        assert np.array_equal(forest.decision_function(X[:1]), expected[:1])
        assert np.array_equal(HeapForest(forest).decision_function(X), expected)


def test_the_explanations_of_a_model_whose_trees_never_split_are_its_base_values():
    """shap explains such a model without error: every finding contributes nothing, the base
    values are the scores (all classes, and one class's trees at a time)."""
    model, X = next(_single_leaf_models())
    attribution, expected = TreeAttribution(model), model._raw_predict(X[:5])
    for classes in (None, [3, 0]):
        values, base = attribution.shap_values(X[:5], classes)
        assert values.shape == (5, X.shape[1], 4 if classes is None else 2) and not values.any()
        np.testing.assert_allclose(np.broadcast_to(base, (5, len(base))), expected[:, classes or slice(None)], rtol=0, atol=1e-12)
