"""Root histograms from rows grouped by bin, in place of scikit-learn's (crampdx.training.histograms)."""

import threading

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting import grower
from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder

from crampdx.training import histograms
from crampdx.training.distill import fit_soft_targets
from crampdx.training.fit import Hyperparameters, fit_classifier
from crampdx.training.histograms import BinGroups, grouped_root_histograms, root_histograms


def _binned(rng, n=3000, n_findings=12):
    """Findings as the training data bins them: mostly one bin, a few rare ones, the missing bin (255),
    and a finding with all rows in one bin."""
    columns = []
    for f in range(n_findings - 1):
        levels = rng.integers(2, 7)
        weights = rng.dirichlet(np.full(levels, 0.4))
        codes = rng.choice(levels, size=n, p=weights).astype(np.uint8)
        codes[rng.random(n) < 0.3 * (f % 2)] = 255
        columns.append(codes)
    columns.append(np.full(n, 1, dtype=np.uint8))
    return np.asfortranarray(np.column_stack(columns))


@pytest.mark.parametrize("n_rows, row_type", [(3000, np.uint16), (1 << 16, np.uint16), ((1 << 16) + 1, np.int32)])
def test_root_histograms_equal_scikit_learns(n_rows, row_type):
    """Every bin's gradient and Hessian sums and counts as scikit-learn's own root histograms;
    the bins summed over their rows bit for bit, the most frequent bin up to rounding. Row
    numbers are 16-bit up to 65,536 rows, 32-bit above."""
    rng = np.random.default_rng(3)
    X_binned = _binned(rng, n=n_rows)
    # magnitudes 1e-9 to 1e9: their float64 sums depend on the order of the additions, so the
    # bins summed over their rows match only when added in scikit-learn's (ascending row) order
    gradients = (rng.normal(size=len(X_binned)) * 10.0 ** rng.uniform(-9, 9, len(X_binned))).astype(np.float32)
    hessians = rng.random(len(X_binned)).astype(np.float32)
    expected = np.asarray(HistogramBuilder(X_binned, 256, gradients, hessians, False, 2)
                          .compute_histograms_brute(np.arange(len(X_binned), dtype=np.uint32), None))
    groups = BinGroups.of(X_binned, 256)
    assert groups.rows.dtype == row_type and groups.rows.max() == n_rows - 1  # the last row is in some bin kept
    got = root_histograms(groups, gradients, hessians)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got["count"], expected["count"])
    summed = np.ones(got.shape, dtype=bool)
    summed[np.arange(got.shape[0]), groups.most_frequent] = False
    for field in ("sum_gradients", "sum_hessians"):
        assert np.array_equal(got[field][summed], expected[field][summed])
        np.testing.assert_allclose(got[field], expected[field], rtol=1e-12, atol=1e-9)


def test_each_finding_leaves_out_its_most_frequent_bin():
    X_binned = np.asfortranarray(np.array([[3, 0], [3, 1], [255, 1], [3, 1], [0, 0]], dtype=np.uint8))
    groups = BinGroups.of(X_binned, 256)
    assert groups.most_frequent.tolist() == [3, 1]
    assert groups.rows.tolist() == [4, 2, 0, 4]  # finding 0: bins 0 and 255; finding 1: bin 0
    assert len(groups.rows) == len(X_binned) * 2 - groups.counts.max(axis=1).sum()


@pytest.mark.parametrize("n_classes", [2, 4])
def test_a_fit_grows_the_same_trees_with_every_root_grouped(n_classes):
    """The same predictions as scikit-learn's own builder, and one grouped root per tree."""
    rng = np.random.default_rng(n_classes)
    X = np.column_stack([rng.integers(0, 3, 2000), rng.integers(0, 5, 2000), rng.normal(size=2000)])
    X[rng.random(2000) < 0.2, 0] = np.nan
    y = (X[:, 1] + (X[:, 2] > 0) + rng.integers(0, 2, 2000)) % n_classes
    params = dict(max_iter=15, max_leaf_nodes=8, early_stopping=False, random_state=0)
    stock = HistGradientBoostingClassifier(**params).fit(X, y)
    with grouped_root_histograms() as roots:
        grouped = HistGradientBoostingClassifier(**params).fit(X, y)
    trees_per_iteration = 1 if n_classes == 2 else n_classes
    assert roots[0] == grouped.n_iter_ * trees_per_iteration == stock.n_iter_ * trees_per_iteration
    np.testing.assert_allclose(grouped.predict_proba(X), stock.predict_proba(X), rtol=0, atol=1e-12)


def test_the_soft_target_fit_groups_its_roots_once_per_training_matrix(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, size=(1200, 5)).astype(float)
    targets = rng.dirichlet(np.ones(3), size=1200)
    made, group = [], BinGroups.of
    monkeypatch.setattr(BinGroups, "of", lambda *args: made.append(1) or group(*args))
    estimator = HistGradientBoostingClassifier(max_iter=10, early_stopping=True, scoring="loss", n_iter_no_change=50)
    with grouped_root_histograms() as roots:
        fit_soft_targets(estimator, X[:1000], targets[:1000], X[1000:], targets[1000:])
    assert roots[0] == 10 * 3 and len(made) == 1


def test_constant_hessians_keep_scikit_learns_histograms():
    """Squared error has one constant Hessian: scikit-learn's own path, nothing grouped."""
    rng = np.random.default_rng(2)
    X, y = rng.integers(0, 4, size=(500, 3)), rng.normal(size=500)
    stock = HistGradientBoostingRegressor(max_iter=10, early_stopping=False).fit(X, y)
    with grouped_root_histograms() as roots:
        grouped = HistGradientBoostingRegressor(max_iter=10, early_stopping=False).fit(X, y)
    assert roots[0] == 0
    np.testing.assert_array_equal(grouped.predict(X), stock.predict(X))


def test_scikit_learns_builder_is_back_after_the_fit_even_when_it_fails():
    with pytest.raises(ValueError), grouped_root_histograms():
        assert grower.HistogramBuilder is not HistogramBuilder
        HistGradientBoostingClassifier().fit(np.zeros((3, 2)), [0, 1])
    assert grower.HistogramBuilder is HistogramBuilder


@pytest.mark.parametrize("change", ["replaced", "renamed"])
def test_a_grower_whose_builder_was_replaced_is_refused(monkeypatch, change):
    """A scikit-learn whose grower builds histograms some other way (or another patch): refused, not
    stacked, with the RuntimeError that training falls back on."""
    if change == "replaced":
        monkeypatch.setattr(grower, "HistogramBuilder", lambda *args: None)
    else:
        monkeypatch.delattr(grower, "HistogramBuilder")
    with pytest.raises(RuntimeError, match="no longer builds histograms"), grouped_root_histograms():
        pass
    assert histograms._grower is grower


def test_two_fits_of_different_data_in_one_context_each_group_their_own_rows(monkeypatch):
    """The grouping cached for one training matrix is never used for another's roots."""
    made, group = [], BinGroups.of
    monkeypatch.setattr(BinGroups, "of", lambda *args: made.append(1) or group(*args))
    params = dict(max_iter=5, max_leaf_nodes=8, early_stopping=False, random_state=0)
    data = []
    for seed in (5, 6):
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 4, size=(600, 4)).astype(float)
        data.append((X, (X[:, seed - 5] + rng.integers(0, 2, 600)) % 3))
    stock = [HistGradientBoostingClassifier(**params).fit(X, y) for X, y in data]
    with grouped_root_histograms() as roots:
        grouped = [HistGradientBoostingClassifier(**params).fit(X, y) for X, y in data]
    assert roots[0] == 2 * 5 * 3 and len(made) == 2
    for (X, _), s, g in zip(data, stock, grouped):
        np.testing.assert_allclose(g.predict_proba(X), s.predict_proba(X), rtol=0, atol=1e-12)


def test_fits_in_other_threads_meanwhile_neither_fail_nor_count():
    """While a thread is inside the context (the dashboard training), another thread's fit in a
    context of its own neither fails nor adds to the first one's roots, nor does a fit outside any
    context (it keeps scikit-learn's builder); scikit-learn's is back when the last one exits."""
    rng = np.random.default_rng(7)
    X, y = rng.integers(0, 3, size=(300, 4)), np.arange(300) % 3
    inside, others_done, counted, errors = threading.Event(), threading.Event(), {}, []

    def fit():
        HistGradientBoostingClassifier(max_iter=3, early_stopping=False).fit(X, y)

    def first():
        with grouped_root_histograms() as roots:
            inside.set()
            others_done.wait(60)
            fit()
        counted["first"] = roots[0]

    def second():
        inside.wait(60)
        try:
            with grouped_root_histograms() as roots:
                fit()
            counted["second"] = roots[0]
            fit()  # outside its context, while the first thread is still inside its own
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            others_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and counted == {"first": 9, "second": 9}
    assert grower.HistogramBuilder is HistogramBuilder


def test_a_nested_context_counts_its_own_roots():
    X, y = np.random.default_rng(8).integers(0, 3, size=(300, 4)), np.arange(300) % 3
    with grouped_root_histograms() as outer:
        with grouped_root_histograms() as inner:
            HistGradientBoostingClassifier(max_iter=2, early_stopping=False).fit(X, y)
        assert grower.HistogramBuilder is not HistogramBuilder
        HistGradientBoostingClassifier(max_iter=3, early_stopping=False).fit(X, y)
    assert (outer[0], inner[0]) == (9, 6) and grower.HistogramBuilder is HistogramBuilder


def _small_fit(report):
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 3, size=(900, 4)).astype(float)
    targets = rng.dirichlet(np.ones(3), size=900)
    return fit_classifier(codes, targets, Hyperparameters(max_iter=5, n_iter_no_change=50), 0, report)


def test_training_falls_back_to_scikit_learns_histograms_when_its_grower_changed(monkeypatch):
    """A scikit-learn whose grower builds histograms another way still trains, and says so."""
    stock = grower.HistogramBuilder
    monkeypatch.setattr(grower, "HistogramBuilder", lambda *args: stock(*args))
    lines = []
    model = _small_fit(lines.append)
    assert model.n_iter_ == 5
    assert any("scikit-learn's own root histograms" in line for line in lines)


def test_training_says_so_when_no_root_was_grouped(monkeypatch):
    monkeypatch.setattr(histograms.GroupedRootHistogramBuilder, "compute_histograms_brute",
                        lambda self, rows, allowed=None: self.builder.compute_histograms_brute(rows, allowed))
    lines = []
    _small_fit(lines.append)
    assert any("without the grouped root histograms" in line for line in lines)
    grouped = []
    monkeypatch.undo()
    _small_fit(grouped.append)
    assert not any("root histograms" in line for line in grouped)
