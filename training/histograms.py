"""Root histograms from rows grouped by bin: the same trees, a fifth of the work per tree.

scikit-learn's gradient boosting starts every tree by summing the gradients and Hessians of
all training rows into a histogram per finding and bin (its root histogram). Here that was
~56 % of the fit: 32,000 rows × 129 findings, 25 trees per iteration, and each row's addition
waits for the previous one to the same bin (most findings sit in one bin for ~75 % of cases:
absent, or not assessed).

The training rows never change during a fit, so they are grouped by bin once per finding,
leaving out each finding's most frequent bin. A root histogram is then, per finding, one sum
per remaining bin over its rows (in row order, as scikit-learn adds them: those bins come out
bit for bit the same), and the most frequent bin is the total minus the others (equal up to
the rounding of that subtraction). The counts are fixed and computed once.

:func:`grouped_root_histograms` puts this builder in place of scikit-learn's for the fits made
inside it, by its thread (a fit in another thread keeps scikit-learn's). The builder wraps
scikit-learn's, so every other histogram (a child node's, by its rows or by subtraction) is
scikit-learn's own. ``HistogramBuilder`` is private: the context checks that the grower still
names it and counts the roots it built, and the tests compare its histograms with scikit-learn's.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from sklearn.ensemble._hist_gradient_boosting import grower as _grower
from sklearn.ensemble._hist_gradient_boosting.common import HISTOGRAM_DTYPE
from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder

from crampdx.compiled import LazyKernel

__all__ = ["BinGroups", "GroupedRootHistogramBuilder", "grouped_root_histograms", "root_histograms"]


@dataclass(frozen=True)
class BinGroups:
    """The rows of a binned training matrix grouped by bin, each finding's most frequent bin left out.

    Attributes
    ----------
    rows : numpy.ndarray
        Row numbers: finding by finding, bin by bin, ascending within a bin; uint16 for up to
        65,536 rows (the default training rows: the loop streams half the bytes, a quarter less
        time per root, 1.67 -> 1.25 ms in ``bench/bench_histograms.py``), else int32.
    starts : numpy.ndarray
        Shape (n_findings, n_bins + 1): ``rows[starts[f, b]:starts[f, b + 1]]`` are the rows of
        finding ``f`` in bin ``b`` (none for the most frequent bin).
    most_frequent : numpy.ndarray
        Each finding's most frequent bin.
    counts : numpy.ndarray
        Shape (n_findings, n_bins): rows per finding and bin (all of them).
    """

    rows: np.ndarray
    starts: np.ndarray
    most_frequent: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, X_binned: np.ndarray, n_bins: int) -> "BinGroups":
        """Group the rows of ``X_binned`` (n_rows, n_findings), bin codes below ``n_bins``.

        Examples
        --------
        >>> groups = BinGroups.of(np.array([[0, 2], [1, 2], [0, 0], [0, 2]], dtype=np.uint8), 3)
        >>> groups.most_frequent.tolist(), groups.counts.tolist()
        ([0, 2], [[3, 1, 0], [1, 0, 3]])
        >>> groups.rows.tolist(), groups.starts.tolist()
        ([1, 2], [[0, 0, 1, 1], [1, 2, 2, 2]])
        """
        X_binned = np.asarray(X_binned)
        n_findings = X_binned.shape[1]
        counts = np.zeros((n_findings, n_bins), dtype=np.int64)
        starts = np.zeros((n_findings, n_bins + 1), dtype=np.int64)
        most_frequent = np.zeros(n_findings, dtype=np.int64)
        rows, placed = [], 0
        row_type = np.uint16 if len(X_binned) <= 1 << 16 else np.int32
        for f in range(n_findings):
            column = X_binned[:, f]
            counts[f] = np.bincount(column, minlength=n_bins)
            most_frequent[f] = counts[f].argmax()
            kept = np.flatnonzero(column != most_frequent[f])
            kept = kept[np.argsort(column[kept], kind="stable")]
            starts[f] = placed + np.searchsorted(column[kept], np.arange(n_bins + 1))
            rows.append(kept.astype(row_type))
            placed += len(kept)
        return cls(np.concatenate(rows), starts, most_frequent, counts)


def _sum_grouped(rows, starts, most_frequent, counts, gradients, hessians, histograms):
    total_gradient, total_hessian = 0.0, 0.0
    for i in range(gradients.shape[0]):
        total_gradient += gradients[i]
        total_hessian += hessians[i]
    n_findings, n_bins = histograms.shape
    for f in range(n_findings):
        others_gradient, others_hessian = 0.0, 0.0
        for b in range(n_bins):
            gradient, hessian = 0.0, 0.0
            for j in range(starts[f, b], starts[f, b + 1]):
                gradient += gradients[rows[j]]
                hessian += hessians[rows[j]]
            histograms[f, b].sum_gradients = gradient
            histograms[f, b].sum_hessians = hessian
            histograms[f, b].count = counts[f, b]
            others_gradient += gradient
            others_hessian += hessian
        histograms[f, most_frequent[f]].sum_gradients = total_gradient - others_gradient
        histograms[f, most_frequent[f]].sum_hessians = total_hessian - others_hessian


SUM_GROUPED_KERNEL = LazyKernel(_sum_grouped, cache=False)  # its doctests run it: see LazyKernel; ~0.5 s a fit


def root_histograms(groups: BinGroups, gradients: np.ndarray, hessians: np.ndarray) -> np.ndarray:
    """The root histogram of every finding, as scikit-learn's ``HISTOGRAM_DTYPE`` (n_findings, n_bins).

    Examples
    --------
    >>> groups = BinGroups.of(np.array([[0], [1], [0]], dtype=np.uint8), 2)
    >>> histograms = root_histograms(groups, np.array([1.0, 2.0, 4.0], np.float32), np.ones(3, np.float32))
    >>> histograms["sum_gradients"].tolist(), histograms["sum_hessians"].tolist(), histograms["count"].tolist()
    ([[5.0, 2.0]], [[2.0, 1.0]], [[2, 1]])
    """
    histograms = np.empty(groups.counts.shape, dtype=HISTOGRAM_DTYPE)
    SUM_GROUPED_KERNEL.get()(groups.rows, groups.starts, groups.most_frequent, groups.counts, gradients, hessians,
                             histograms)
    return histograms


class GroupedRootHistogramBuilder:
    """scikit-learn's histogram builder (``builder``), with the root's histograms summed over rows
    grouped by bin; everything else is passed to ``builder`` (scikit-learn's class is final, so
    this wraps it rather than subclassing).

    ``groups_of`` gives the :class:`BinGroups` of a binned matrix (cached per fit by
    :func:`grouped_root_histograms`); ``on_root`` is called after each root histogram built here.
    """

    def __init__(self, builder: HistogramBuilder, X_binned: np.ndarray, *, groups_of, on_root):
        self.builder, self._binned = builder, X_binned  # the array itself: groups are cached by its identity
        self._groups_of, self._on_root = groups_of, on_root

    def __getattr__(self, name: str):
        return getattr(self.builder, name)

    def compute_histograms_brute(self, sample_indices, allowed_features=None):
        """A node's histograms: grouped for the root (every row, every finding), else scikit-learn's."""
        builder = self.builder
        if allowed_features is not None or builder.hessians_are_constant or len(sample_indices) != len(self._binned):
            return builder.compute_histograms_brute(sample_indices, allowed_features)
        histograms = root_histograms(self._groups_of(self._binned, builder.n_bins),
                                     np.asarray(builder.gradients), np.asarray(builder.hessians))
        self._on_root()
        return histograms


# The grower's HistogramBuilder is replaced while any thread is inside grouped_root_histograms
# (counted under the lock); each thread's innermost context is its own (its grouping cache and
# count), so a fit in another thread, inside a context of its own or in none, is unaffected.
_install_lock = threading.Lock()
_open_contexts = [0]
_local = threading.local()


@dataclass
class _Context:
    cached: list = field(default_factory=list)  # [(weakref to a binned matrix, n_bins, BinGroups)]
    roots: list = field(default_factory=lambda: [0])

    def groups_of(self, X_binned: np.ndarray, n_bins: int) -> BinGroups:
        for reference, bins, groups in self.cached:
            if reference() is X_binned and bins == n_bins:
                return groups
        groups = BinGroups.of(X_binned, n_bins)
        self.cached[:] = [(weakref.ref(X_binned), n_bins, groups)]
        return groups

    def count_root(self) -> None:
        self.roots[0] += 1


def _builder(X_binned, n_bins, *args):
    """What the grower builds in place of ``HistogramBuilder``: grouped roots inside a context of
    this thread, scikit-learn's own builder anywhere else."""
    builder = HistogramBuilder(X_binned, n_bins, *args)
    context = getattr(_local, "context", None)
    if context is None:
        return builder
    return GroupedRootHistogramBuilder(builder, X_binned, groups_of=context.groups_of,
                                       on_root=context.count_root)


@contextlib.contextmanager
def grouped_root_histograms() -> Iterator[list[int]]:
    """Within: scikit-learn's gradient boosting builds root histograms with :class:`GroupedRootHistogramBuilder`.

    Yields a one-item list: the number of root histograms built the grouped way so far (one
    per tree whose Hessians vary) by fits in this thread, for the caller to check that
    scikit-learn used the builder. Fits in other threads are not affected (each thread's
    contexts are its own; a nested context counts its own roots). scikit-learn's own builder
    is back in place when the last context of any thread exits. The grouping of a training
    matrix is made once, at its first tree, and dropped with the matrix.

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> X, y = np.random.default_rng(0).integers(0, 3, size=(200, 4)), np.arange(200) % 3
    >>> with grouped_root_histograms() as roots:
    ...     model = HistGradientBoostingClassifier(max_iter=5, early_stopping=False).fit(X, y)
    >>> roots[0]
    15
    """
    with _install_lock:
        if getattr(_grower, "HistogramBuilder", None) is not (_builder if _open_contexts[0] else HistogramBuilder):
            raise RuntimeError("scikit-learn's tree grower no longer builds histograms with its HistogramBuilder "
                               "(or something else replaced it): the grouped root histograms are not supported here")
        _grower.HistogramBuilder = _builder
        _open_contexts[0] += 1
    context, outer = _Context(), getattr(_local, "context", None)
    _local.context = context
    try:
        yield context.roots
    finally:
        _local.context = outer
        with _install_lock:
            _open_contexts[0] -= 1
            if not _open_contexts[0] and _grower.HistogramBuilder is _builder:
                _grower.HistogramBuilder = HistogramBuilder
