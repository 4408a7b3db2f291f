"""Large batches are scored in compiled code to the bit as scikit-learn scores them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier


from crampdx.compiled import LazyKernel
from crampdx.model import batch_forest
from crampdx.model.batch_forest import FEW_ROWS, MAX_DEPTH, ROWS_PER_TASK, ROWS_WORTH_STARTING, HeapForest, compile_kernels
from crampdx.model.diagnoser import SMALL_BATCH, Diagnoser
from crampdx.model.forest import CompiledForest
from crampdx.synthetic import generate


@pytest.fixture(scope="module")
def heaps(tiny_diagnoser):
    return HeapForest(CompiledForest(tiny_diagnoser.estimator_))


def _same_floats(ours, theirs):
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs), f"largest difference {np.abs(ours - theirs).max():.3g}"


def test_generated_cases_score_as_scikit_learn_to_the_bit(tiny_diagnoser, heaps):
    codes = tiny_diagnoser.schema.encode(generate(2 * ROWS_PER_TASK + 37, seed=21))
    assert np.isnan(codes).any() and (~np.isnan(codes)).any()
    _same_floats(heaps.decision_function(codes), tiny_diagnoser.estimator_.decision_function(codes))
    # up to FEW_ROWS rows a row at a time (lanes of trees), then lanes of 16 rows
    for n in (1, 5, FEW_ROWS, FEW_ROWS + 1, 16, 17):
        _same_floats(heaps.decision_function(codes[:n]), tiny_diagnoser.estimator_.decision_function(codes[:n]))


def test_a_few_rows_score_as_scikit_learn_to_the_bit_whatever_the_number_of_trees():
    """Lanes of 8 trees: forests of 8k and 8k + r trees (the remainder walked one by one)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 1]) > 0.5)
    for iterations in (1, 3, 8, 11):  # x 3 classes: 3, 9, 24 and 33 trees
        model = HistGradientBoostingClassifier(max_iter=iterations, early_stopping=False, random_state=0).fit(X, y)
        heaps = HeapForest(CompiledForest(model))
        assert heaps.split_feature_.shape[0] == 3 * iterations
        _same_floats(heaps.decision_function(X[:FEW_ROWS]), model.decision_function(X[:FEW_ROWS]))


def test_thresholds_missing_values_and_infinities_take_scikit_learns_side(tiny_diagnoser, heaps):
    """Values exactly on split thresholds (600 splits drawn at random, one per case), some of
    them missing or infinite instead."""
    forest = CompiledForest(tiny_diagnoser.estimator_)
    splits = ~forest.is_leaf_
    features, thresholds = forest.feature_[splits], forest.threshold_[splits]
    rng = np.random.default_rng(6)
    chosen = rng.choice(len(features), size=600, replace=True)
    codes = tiny_diagnoser.schema.encode(generate(600, seed=22))
    rows = np.arange(600)
    codes[rows, features[chosen]] = thresholds[chosen]
    codes[rows[::4], features[chosen][::4]] = np.nan
    codes[rows[1::4], features[chosen][1::4]] = np.inf
    codes[rows[2::8], features[chosen][2::8]] = -np.inf
    expected = tiny_diagnoser.estimator_.decision_function(codes)
    _same_floats(heaps.decision_function(codes), expected)
    few = np.vstack([heaps.decision_function(codes[i:i + FEW_ROWS]) for i in range(0, 600, FEW_ROWS)])
    _same_floats(few, expected)  # a row at a time, lanes of trees


def test_uneven_trees_are_padded_without_changing_a_score():
    """Unlimited depth and 6 leaves: trees with leaves at several depths, missing values in training."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 4))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = (np.nan_to_num(X[:, 0]) > 0.3).astype(int) + (np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) > 0.1) \
        + np.isnan(X[:, 3])
    model = HistGradientBoostingClassifier(max_iter=20, max_depth=None, max_leaf_nodes=6, random_state=0).fit(X, y)
    forest = CompiledForest(model)
    depths = {int(d) for p in model._predictors for t in p for d in t.nodes["depth"][t.nodes["is_leaf"]]}
    assert len(depths) > 1 and forest.depth_ > 2
    test = rng.normal(size=(2500, 4))
    test[rng.random(test.shape) < 0.2] = np.nan
    heaps = HeapForest(forest)
    _same_floats(heaps.decision_function(test), model.decision_function(test))
    _same_floats(np.vstack([heaps.decision_function(test[i:i + FEW_ROWS]) for i in range(0, 400, FEW_ROWS)]),
                 model.decision_function(test[:400]))


def test_one_thread_and_several_give_the_same_scores(tiny_diagnoser, heaps):
    codes = tiny_diagnoser.schema.encode(generate(3 * ROWS_PER_TASK, seed=23))
    _same_floats(heaps.decision_function(codes, n_threads=1), heaps.decision_function(codes, n_threads=3))


def test_a_forest_too_deep_for_heaps_is_refused():
    """A chain-like tree deeper than MAX_DEPTH is refused by HeapForest (the Diagnoser then
    keeps scikit-learn, as for a forest too large, below)."""
    X = np.arange(4000, dtype=float)[:, None]
    y = (np.arange(4000) % 3 == 0).astype(int) + (np.arange(4000) % 5 == 0)
    model = HistGradientBoostingClassifier(max_iter=2, max_depth=None, max_leaf_nodes=255, min_samples_leaf=1,
                                           max_bins=255, random_state=0).fit(X, y)
    forest = CompiledForest(model)
    assert forest.depth_ > MAX_DEPTH and not HeapForest.supports(forest)
    with pytest.raises(ValueError, match="too deep"):
        HeapForest(forest)


@pytest.fixture
def heap_calls(monkeypatch):
    """The number of rows of every batch HeapForest scores."""
    calls = []
    scored = HeapForest.decision_function
    monkeypatch.setattr(HeapForest, "decision_function", lambda self, X, **kw: calls.append(len(X)) or scored(self, X, **kw))
    return calls


def test_until_numba_has_started_one_case_and_small_batches_take_the_numpy_walk(tiny_diagnoser, heap_calls, monkeypatch):
    """A command-line run does not pay numba's start for one case; a server's warm-up
    (compile_kernels) or a large batch starts it, and then every batch is scored in compiled
    code, to the bit as scikit-learn scores it."""
    monkeypatch.setattr(batch_forest, "SCORE_KERNEL", LazyKernel(batch_forest._score_rows, helpers=batch_forest.SCORE_KERNEL.helpers))  # as in a new process
    monkeypatch.setattr(batch_forest, "FEW_ROWS_KERNEL", LazyKernel(batch_forest._score_few_rows, helpers=batch_forest.FEW_ROWS_KERNEL.helpers))
    codes = tiny_diagnoser.schema.encode(generate(ROWS_WORTH_STARTING, seed=24))

    def expected(rows):
        return tiny_diagnoser.estimator_.decision_function(rows) / tiny_diagnoser.temperature_

    np.testing.assert_allclose(tiny_diagnoser.scores(codes[:1]), expected(codes[:1]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(tiny_diagnoser.scores(codes[:SMALL_BATCH]), expected(codes[:SMALL_BATCH]), rtol=0, atol=1e-9)
    assert heap_calls == []
    _same_floats(tiny_diagnoser.scores(codes), expected(codes))
    assert heap_calls == [ROWS_WORTH_STARTING]
    _same_floats(tiny_diagnoser.scores(codes[:SMALL_BATCH]), expected(codes[:SMALL_BATCH]))  # lanes of rows started
    tiny_diagnoser.scores(codes[:1])
    assert heap_calls == [ROWS_WORTH_STARTING, SMALL_BATCH]  # the few-rows loop is not started yet
    compile_kernels(tiny_diagnoser.batch_forest_)
    assert batch_forest.FEW_ROWS_KERNEL.started and batch_forest.SCORE_KERNEL.started
    heap_calls.clear()
    for n in (1, FEW_ROWS):
        _same_floats(tiny_diagnoser.scores(codes[:n]), expected(codes[:n]))
    assert heap_calls == [1, FEW_ROWS]


def test_numba_is_started_only_for_a_batch_worth_it_then_used_for_any_large_batch(tiny_diagnoser, heap_calls, monkeypatch):
    monkeypatch.setattr(batch_forest, "SCORE_KERNEL", LazyKernel(batch_forest._score_rows, helpers=batch_forest.SCORE_KERNEL.helpers))  # as in a new process
    codes = tiny_diagnoser.schema.encode(generate(SMALL_BATCH + 10, seed=25))
    expected = tiny_diagnoser.estimator_.decision_function(codes) / tiny_diagnoser.temperature_
    _same_floats(tiny_diagnoser.scores(codes), expected)  # scikit-learn: numba not worth starting for this
    assert heap_calls == [] and not HeapForest.worthwhile(SMALL_BATCH + 10) and HeapForest.worthwhile(ROWS_WORTH_STARTING)
    batch_forest.SCORE_KERNEL.get()
    _same_floats(tiny_diagnoser.scores(codes), expected)
    assert heap_calls == [SMALL_BATCH + 10]


def test_a_forest_too_large_for_heaps_is_scored_by_scikit_learn(tiny_diagnoser, heap_calls, monkeypatch):
    monkeypatch.setattr(batch_forest, "MAX_CELLS", 1000)
    diagnoser = Diagnoser(tiny_diagnoser.estimator_, tiny_diagnoser.manifest_, tiny_diagnoser.knowledge_)
    assert diagnoser.batch_forest_ is None
    codes = tiny_diagnoser.schema.encode(generate(ROWS_WORTH_STARTING, seed=26))
    _same_floats(diagnoser.scores(codes), tiny_diagnoser.estimator_.decision_function(codes) / tiny_diagnoser.temperature_)
    assert heap_calls == []


def test_without_a_writable_cache_numba_compiles_in_memory(tiny_diagnoser, numba_without_disk_cache, monkeypatch):
    """numba refuses cache=True where it finds no writable cache folder (a read-only install
    run by a user without a home): the loop is compiled without the cache instead."""
    monkeypatch.setattr(batch_forest, "SCORE_KERNEL", LazyKernel(batch_forest._score_rows, helpers=batch_forest.SCORE_KERNEL.helpers))
    codes = tiny_diagnoser.schema.encode(generate(50, seed=27))
    heaps = HeapForest(CompiledForest(tiny_diagnoser.estimator_))
    _same_floats(heaps.decision_function(codes), tiny_diagnoser.estimator_.decision_function(codes))


def test_the_thread_count_honours_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert batch_forest.available_cpus() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert batch_forest.available_cpus() >= 1


def test_indices_out_of_range_are_refused_before_the_unchecked_loop_reads_them(tiny_diagnoser):
    forest = CompiledForest(tiny_diagnoser.estimator_)
    forest._side_feature = forest._side_feature.copy()
    forest._side_feature[~forest.is_leaf_] = 2 * forest.n_features_in_  # one past the doubled row
    with pytest.raises(ValueError, match="out of range"):
        HeapForest(forest)


def test_a_batch_of_the_wrong_width_is_refused(heaps):
    with pytest.raises(ValueError, match="columns"):
        heaps.decision_function(np.zeros((3, heaps.n_features_in_ + 1)))
