"""Batches scored in compiled code, every tree laid out as a complete binary tree.

Large batches, and in a server (whose warm-up compiles the loops, :func:`compile_kernels`)
every batch, one case included.

scikit-learn scores a batch tree by tree, each tree a parallel loop over the rows: about
4,700 rows/s for the default model's 8,325 depth-3 trees on this machine's two cores, most
of it spent on branches the processor cannot predict (is this node a leaf, is the value
missing, which side). Here every tree is stored in heap order (node ``k``'s children at
``2k + 1`` and ``2k + 2``) down to the forest's depth, a leaf above the last level becoming
splits that send every value left to copies of itself; a missing value reads from a copy of
the row in which it stands at the side the node learned for it (``-inf`` left, ``+inf``
right, as in :mod:`crampdx.model.forest`). A walk is then ``depth`` steps of a load, a
comparison and an index computation, with no branch. numba (installed with shap) compiles
the loop over rows; rows are shared among threads, the compiled loop releasing the GIL.

Each class sums its baseline and then its trees in iteration order, as scikit-learn does, so
the scores are the same floats (``tests/test_batch_forest.py`` checks equality to the bit).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np

from crampdx.compiled import LazyKernel
from crampdx.model.forest import CompiledForest

__all__ = ["FEW_ROWS", "FEW_ROWS_KERNEL", "HeapForest", "SCORE_KERNEL", "available_cpus", "compile_kernels"]

# Deeper or much larger forests (trained with other hyperparameters) stay with scikit-learn:
# a heap holds 2**depth cells per tree, most of them padding when the trees are deep and
# narrow; 2**21 cells are ~50 MB of arrays (the default model needs 66,600).
MAX_DEPTH = 8
MAX_CELLS = 1 << 21
ROWS_PER_TASK = 1024
LANES = 16
# A batch of at most FEW_ROWS rows (one case) walks TREE_LANES trees side by side instead of
# LANES rows: lanes of rows would be mostly padding. (A case with a result known only as a range
# is scored as RANGE_DRAWS = 32 rows: lanes of rows.)
FEW_ROWS = 8  # measured: 0.55 ms for 8 rows of the default model, lanes of rows 0.93 ms; 16 rows 1.1 and 0.9
TREE_LANES = 8
# numba's start (importing it and loading the compiled loop from its cache, 0.6-0.9 s once
# per process) is about what the compiled loop saves on ~4,000 rows of the default model
# against scikit-learn: smaller batches stay with scikit-learn until a large one has paid it.
ROWS_WORTH_STARTING = 4096
_LARGEST = float(np.finfo(float).max)


def available_cpus() -> int:
    """The CPUs this process may use: joblib's count (CPU affinity and container quotas),
    at most ``OMP_NUM_THREADS`` when set, as for scikit-learn's own threads.

    Examples
    --------
    >>> 1 <= available_cpus() <= (os.cpu_count() or 1)
    True
    """
    cpus = max(1, joblib.cpu_count())
    limit = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return min(cpus, int(limit)) if limit.isdigit() and int(limit) > 0 else cpus


def _put_value(row, j, m, value):
    """Finding ``j``'s value into a doubled row: missing sent left (``-inf``) at ``j`` and right
    (``+inf``) at ``m + j``; otherwise the value at both, an infinity capped at the largest float."""
    if value != value:
        row[j] = -np.inf
        row[m + j] = np.inf
    else:
        row[j] = min(value, _LARGEST)
        row[m + j] = row[j]


def _score_rows(X, split_feature, split_at, leaf_value, tree_class, baseline, depth, out):
    """Raw scores of the rows of ``X`` into ``out`` (compiled by :data:`SCORE_KERNEL`).

    ``LANES`` rows walk each tree side by side: their walks are independent chains of loads,
    which the processor overlaps (1.7x the rows per second of one row at a time, measured).
    """
    n, m = X.shape
    n_trees, n_splits = split_feature.shape
    rows = np.empty((LANES, 2 * m))  # each row's values, missing ones sent left, then right
    scores = np.empty((LANES, baseline.shape[0]))
    node = np.zeros(LANES, dtype=np.intp)
    for first in range(0, n, LANES):
        for lane in range(LANES):
            for j in range(m):  # past the end: computed, not kept
                _put_value(rows[lane], j, m, X[first + lane, j] if first + lane < n else np.nan)
            for c in range(baseline.shape[0]):
                scores[lane, c] = baseline[c]
        for t in range(n_trees):
            for lane in range(LANES):
                node[lane] = 0
            for _ in range(depth):
                for lane in range(LANES):
                    k = node[lane]
                    node[lane] = 2 * k + 1 + (rows[lane, split_feature[t, k]] > split_at[t, k])
            for lane in range(LANES):
                scores[lane, tree_class[t]] += leaf_value[t, node[lane] - n_splits]
        for lane in range(min(LANES, n - first)):
            for c in range(baseline.shape[0]):
                out[first + lane, c] = scores[lane, c]


SCORE_KERNEL = LazyKernel(_score_rows, helpers=(_put_value,))  # made once per process, on the first large batch


def _score_few_rows(X, split_feature, split_at, leaf_value, tree_class, baseline, depth, out):
    """Raw scores of a few rows into ``out`` (compiled by :data:`FEW_ROWS_KERNEL`): a row at a
    time, ``TREE_LANES`` trees walked side by side (independent chains of loads, as the lanes
    of rows of :func:`_score_rows`), each class summed in tree order as scikit-learn sums it.
    """
    n, m = X.shape
    n_trees, n_splits = split_feature.shape
    row = np.empty(2 * m)
    node = np.zeros(TREE_LANES, dtype=np.intp)
    whole = n_trees - n_trees % TREE_LANES
    for r in range(n):
        for j in range(m):
            _put_value(row, j, m, X[r, j])
        for c in range(baseline.shape[0]):
            out[r, c] = baseline[c]
        for first in range(0, whole, TREE_LANES):
            for lane in range(TREE_LANES):
                node[lane] = 0
            for _ in range(depth):
                for lane in range(TREE_LANES):
                    k = node[lane]
                    node[lane] = 2 * k + 1 + (row[split_feature[first + lane, k]] > split_at[first + lane, k])
            for lane in range(TREE_LANES):
                out[r, tree_class[first + lane]] += leaf_value[first + lane, node[lane] - n_splits]
        for t in range(whole, n_trees):
            k = 0
            for _ in range(depth):
                k = 2 * k + 1 + (row[split_feature[t, k]] > split_at[t, k])
            out[r, tree_class[t]] += leaf_value[t, k - n_splits]


# made by a server's warm-up (:func:`compile_kernels`); a short command-line run keeps the
# numpy walk of :class:`~crampdx.model.forest.CompiledForest` for its single cases
FEW_ROWS_KERNEL = LazyKernel(_score_few_rows, helpers=(_put_value,))


class HeapForest:
    """A compiled forest's raw decision function, in compiled code.

    Parameters
    ----------
    forest : CompiledForest
        The model's trees: at most ``MAX_DEPTH`` deep and ``MAX_CELLS`` heap leaves in all
        (see :meth:`supports`).

    Attributes
    ----------
    split_feature_ : ndarray of shape (n_trees, 2**depth - 1)
        Per split, the position in the doubled row (a missing value's side, then the finding).
    split_at_ : ndarray of shape (n_trees, 2**depth - 1)
        Go right when the value is above it; ``+inf`` for padding (everything goes left).
    leaf_value_ : ndarray of shape (n_trees, 2**depth)

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> X = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 0.0], [3.0, 1.0]] * 25)
    >>> model = HistGradientBoostingClassifier(max_iter=5, min_samples_leaf=5).fit(X, [0, 1, 2, 1] * 25)
    >>> heaps = HeapForest(CompiledForest(model))
    >>> bool((heaps.decision_function(X) == model.decision_function(X)).all())
    True
    """

    def __init__(self, forest: CompiledForest) -> None:
        if not self.supports(forest):
            raise ValueError(f"{forest.n_trees_} trees of depth {forest.depth_} are too deep or too many to lay out as heaps "
                             f"(at most depth {MAX_DEPTH} and {MAX_CELLS:,} leaves in all)")
        self.depth_ = depth = max(1, forest.depth_)
        n_splits = (1 << depth) - 1
        self.split_feature_ = np.zeros((forest.n_trees_, n_splits), dtype=np.intp)
        self.split_at_ = np.full((forest.n_trees_, n_splits), np.inf)
        self.leaf_value_ = np.zeros((forest.n_trees_, n_splits + 1))
        trees = np.arange(forest.n_trees_)
        self._place(forest, trees, forest.roots_.astype(np.intp), np.zeros(forest.n_trees_, dtype=np.intp))
        self.tree_class_ = forest.tree_class_.astype(np.intp)
        self.baseline_ = forest.baseline_.astype(float)
        self.n_classes_ = forest.n_classes_
        self.n_features_in_ = forest.n_features_in_
        # The compiled loop reads without bounds checks: every index it follows must lie in range
        # (the loader has checked the model's arrays; this keeps the loop safe on its own).
        if not (0 <= self.split_feature_.min() and self.split_feature_.max() < 2 * self.n_features_in_
                and 0 <= self.tree_class_.min() and self.tree_class_.max() < len(self.baseline_) == self.n_classes_):
            raise ValueError("the forest's feature or class indices are out of range")

    @staticmethod
    def worthwhile(n_rows: int) -> bool:
        """Whether a batch of ``n_rows`` is worth scoring here: large enough to pay numba's
        start, or any batch once it has been paid in this process; at most ``FEW_ROWS`` rows
        once their loop has been made (a server's warm-up makes it)."""
        if n_rows <= FEW_ROWS:
            return FEW_ROWS_KERNEL.started
        return n_rows >= ROWS_WORTH_STARTING or SCORE_KERNEL.started

    @staticmethod
    def supports(forest: CompiledForest) -> bool:
        """Whether the forest is shallow and small enough to be laid out as heaps."""
        return forest.depth_ <= MAX_DEPTH and forest.n_trees_ << max(1, forest.depth_) <= MAX_CELLS

    def _place(self, forest: CompiledForest, trees: np.ndarray, nodes: np.ndarray, slots: np.ndarray) -> None:
        """Put ``nodes`` (one per tree of ``trees``) at heap positions ``slots``, level by level."""
        n_splits = self.split_at_.shape[1]
        while len(trees):
            leaves = slots >= n_splits
            self.leaf_value_[trees[leaves], slots[leaves] - n_splits] = forest.value_[nodes[leaves]]
            trees, nodes, slots = trees[~leaves], nodes[~leaves], slots[~leaves]
            split = ~forest.is_leaf_[nodes]
            self.split_feature_[trees[split], slots[split]] = forest._side_feature[nodes[split]]
            self.split_at_[trees[split], slots[split]] = forest._split_at[nodes[split]]
            # a padded leaf sends everything left; both children copy it
            left = np.where(split, forest.children_[nodes, 0], nodes)
            right = np.where(split, forest.children_[nodes, 1], nodes)
            trees = np.concatenate([trees, trees])
            nodes = np.concatenate([left, right]).astype(np.intp)
            slots = np.concatenate([2 * slots + 1, 2 * slots + 2])

    def _kernel_arrays(self) -> tuple:
        """What both compiled loops read after the rows: the heaps, the classes, the baseline, the depth."""
        return self.split_feature_, self.split_at_, self.leaf_value_, self.tree_class_, self.baseline_, self.depth_

    def decision_function(self, X: np.ndarray, *, n_threads: int | None = None) -> np.ndarray:
        """Raw multi-class scores, equal to ``estimator.decision_function(X)`` to the bit.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Encoded cases, ``NaN`` where not assessed.
        n_threads : int, optional
            Threads sharing the rows (default: the CPUs this process may use).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        # C order and writable: numba compiles once per layout and read-only flag, and a second
        # compilation would stall a server for a second or more
        X = np.require(X, dtype=float, requirements=["C", "W"])
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected a 2-d array of cases with {self.n_features_in_} columns, got shape {X.shape}")
        out = np.empty((len(X), self.n_classes_))
        arrays = self._kernel_arrays()
        if len(X) <= FEW_ROWS:
            FEW_ROWS_KERNEL.get()(X, *arrays, out)
            return out
        kernel = SCORE_KERNEL.get()
        tasks = [slice(start, start + ROWS_PER_TASK) for start in range(0, len(X), ROWS_PER_TASK)]
        threads = min(len(tasks), n_threads or available_cpus())
        if threads <= 1:
            for rows in tasks:
                kernel(X[rows], *arrays, out[rows])
            return out
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda rows: kernel(X[rows], *arrays, out[rows]), tasks):
                pass
        return out


def compile_kernels(heaps: HeapForest) -> None:
    """Compile both loops now (numba: ~1 s from its disk cache, seconds the first time), so
    that every batch after it in this process, one case or many, is scored in compiled code:
    for a server's warm-up. Until each loop is compiled, batches keep the path they had (see
    :meth:`HeapForest.worthwhile`)."""
    empty = np.full((FEW_ROWS + 1, heaps.n_features_in_), np.nan)
    arrays = heaps._kernel_arrays()
    FEW_ROWS_KERNEL.warm(empty[:1], *arrays, np.empty((1, heaps.n_classes_)))
    SCORE_KERNEL.warm(empty, *arrays, np.empty((len(empty), heaps.n_classes_)))
