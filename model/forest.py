"""All trees of a fitted HistGradientBoostingClassifier as flat arrays, walked together.

scikit-learn predicts tree by tree: for every one of the ~5,000 trees (iterations x classes)
it makes a Python-level call into Cython, so one case costs tens of milliseconds, nearly all
of it overhead. Here every tree's nodes sit in one array and a case walks all trees at once,
one numpy step per tree level: one case takes a few tenths of a millisecond without numba's
start. Large batches, and every batch once a server has started numba, go to
:mod:`crampdx.model.batch_forest` (compiled code).

A case assesses a handful of the findings, and a tree whose path for a case with nothing
assessed meets none of them ends in that same leaf for this case (a missing value always
takes the side the node learned for it). So the scores of the empty case are kept, and a
case walks only the trees whose empty-case path meets a finding it assesses, adding the
change of their leaves: a sixth to a half of the trees for typical cases.

A step of the walk is three gathers and a comparison: each node reads its feature from a copy
of the case whose missing values stand at the side the node sends them to (``-inf`` left,
``+inf`` right), and goes right when the value is above its threshold (the ``x <= threshold``
of scikit-learn, turned round; a split of everything but the missing values, whose threshold
is ``+inf``, compares with the largest float instead, as does an infinite value).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CompiledForest", "refuse_categorical_splits"]


def refuse_categorical_splits(nodes: np.ndarray) -> None:
    """Raise ``ValueError`` if a tree's nodes (scikit-learn's node array) hold a categorical
    split: the compiled forest and shap's tree format read every split as numeric, which
    would give wrong scores and explanations without a sign (see training/fit.py)."""
    if nodes["is_categorical"].any():
        raise ValueError("the model has categorical splits; it must be fitted with categorical_features=None")

_LARGEST = np.finfo(float).max


class CompiledForest:
    """A fitted ``HistGradientBoostingClassifier``'s raw decision function, vectorised over trees.

    Parameters
    ----------
    estimator : sklearn.ensemble.HistGradientBoostingClassifier
        Fitted, with numerical splits only (``categorical_features=None``).

    Attributes
    ----------
    n_trees_ : int
        Number of trees (iterations x classes).
    depth_ : int
        Depth of the deepest tree: the number of steps of a walk.

    Notes
    -----
    Each node follows scikit-learn's rule for raw (unbinned) inputs: a missing value goes to
    the side the node learned for missing values, otherwise ``x <= threshold`` goes left.
    """

    def __init__(self, estimator) -> None:
        iterations = estimator._predictors
        trees = [predictor.nodes for predictors in iterations for predictor in predictors]
        for tree in trees:
            refuse_categorical_splits(tree)
        sizes = np.array([len(nodes) for nodes in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate(trees)
        shift = np.repeat(offsets, sizes)
        self.n_classes_ = len(iterations[0])
        self.n_trees_ = len(trees)
        # 32-bit node and feature indices: half the memory each step gathers from
        self.roots_ = offsets.astype(np.int32)
        self.feature_ = nodes["feature_idx"].astype(np.int32)
        self.threshold_ = nodes["num_threshold"].astype(float)
        self.missing_left_ = nodes["missing_go_to_left"].astype(bool)
        self.is_leaf_ = nodes["is_leaf"].astype(bool)
        itself = np.arange(len(nodes))
        # (left, right) child of each node; a leaf is its own child, so a walk can take extra steps
        self.children_ = np.column_stack([np.where(self.is_leaf_, itself, nodes["left"] + shift),
                                          np.where(self.is_leaf_, itself, nodes["right"] + shift)]).astype(np.int32)
        self.value_ = nodes["value"].astype(float)
        self.depth_ = int(nodes["depth"].max())
        self.baseline_ = np.asarray(estimator._baseline_prediction, dtype=float).reshape(-1)
        self.n_features_in_ = int(estimator.n_features_in_)
        self.tree_class_ = np.tile(np.arange(self.n_classes_), len(iterations))
        self._index_empty_case_paths()
        # the walk's own arrays (pointer-sized indices: no conversion at each gather)
        self._side_feature = (~self.missing_left_).astype(np.intp) * self.n_features_in_ + self.feature_
        self._split_at = np.minimum(self.threshold_, _LARGEST)
        self._next = self.children_.astype(np.intp).ravel()  # node i's (left, right) at 2i, 2i + 1
        self._roots = self.roots_.astype(np.intp)
        self._empty_value = self.value_[self.empty_leaf_]

    def _index_empty_case_paths(self) -> None:
        """The leaf each tree gives a case with nothing assessed, the resulting scores, and
        for each feature the trees whose path for that case splits on it."""
        node, on_path = self.roots_.copy(), []
        for _ in range(self.depth_):
            on_path.append(np.where(self.is_leaf_[node], -1, self.feature_[node]))
            node = self.children_[node, (~self.missing_left_[node]).view(np.int8)]
        self.empty_leaf_ = node
        self.empty_scores_ = self.baseline_ + np.bincount(self.tree_class_, weights=self.value_[node],
                                                          minlength=self.n_classes_)
        # every tree a single leaf (depth 0: a model that never split) leaves no path to index
        on_path = np.concatenate(on_path) if on_path else np.zeros(0, dtype=np.int32)
        pairs = np.unique(np.column_stack([on_path, np.tile(np.arange(self.n_trees_), self.depth_)]), axis=0)
        pairs = pairs[pairs[:, 0] >= 0]
        n_features = int(self.feature_.max()) + 1 if len(self.feature_) else 0
        self.trees_by_feature_ = np.split(pairs[:, 1], np.searchsorted(pairs[:, 0], np.arange(1, n_features)))

    def trees_to_walk(self, X: np.ndarray) -> np.ndarray:
        """Indices of the trees whose leaf for some case of ``X`` may differ from the empty case's."""
        features = np.flatnonzero(~np.isnan(X).all(axis=0))
        features = features[features < len(self.trees_by_feature_)]
        if not len(features):
            return np.zeros(0, dtype=np.intp)
        walk = np.zeros(self.n_trees_, dtype=bool)
        walk[np.concatenate([self.trees_by_feature_[f] for f in features])] = True
        return np.flatnonzero(walk)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Raw multi-class scores, equal to ``estimator.decision_function(X)`` (to rounding).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Encoded cases, ``NaN`` where not assessed.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected a 2-d array of cases with {self.n_features_in_} columns, got shape {X.shape}")
        trees = self.trees_to_walk(X)
        n, m = X.shape
        finite = np.minimum(X, _LARGEST)  # +inf goes left of a +inf threshold, as x <= threshold
        sides = np.empty((n, 2, m))  # a case's values, its missing ones sent left, then right
        sides[:, 0] = np.where(np.isnan(X), -np.inf, finite)
        sides[:, 1] = np.where(np.isnan(X), np.inf, finite)
        flat = sides.ravel()
        node, cell = self._roots[trees], self.tree_class_[trees]
        if n > 1:
            node = np.broadcast_to(node, (n, len(trees)))
            offset = (np.arange(n) * 2 * m)[:, None]
            cell = (np.arange(n)[:, None] * self.n_classes_ + cell).ravel()
        for _ in range(self.depth_):  # leaves point to themselves, so extra steps are harmless
            x = flat[self._side_feature[node] if n == 1 else offset + self._side_feature[node]]
            node = self._next[2 * node + (x > self._split_at[node])]
        change = self.value_[node] - self._empty_value[trees]
        return self.empty_scores_ + np.bincount(cell, weights=change.ravel(), minlength=n * self.n_classes_).reshape(n, -1)
