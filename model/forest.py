"""All trees of a fitted HistGradientBoostingClassifier as flat arrays, walked together.

scikit-learn predicts tree by tree: for every one of the ~5,000 trees (iterations x classes)
it makes a Python-level call into Cython, so one case costs tens of milliseconds, nearly all
of it overhead. Here every tree's nodes sit in one array and a case walks all trees at once,
one numpy step per tree level: one case, or the few hundred hypothetical cases of
``next_best_findings``, takes about a millisecond. Large batches still go through
scikit-learn, which parallelises over cases.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CompiledForest"]


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
        if any(nodes["is_categorical"].any() for nodes in trees):
            raise ValueError("the model has categorical splits; it must be fitted with categorical_features=None")
        sizes = np.array([len(nodes) for nodes in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate(trees)
        shift = np.repeat(offsets, sizes)
        self.n_classes_ = len(iterations[0])
        self.n_trees_ = len(trees)
        self.roots_ = offsets.astype(np.intp)
        self.feature_ = nodes["feature_idx"].astype(np.intp)
        self.threshold_ = nodes["num_threshold"].astype(float)
        self.missing_left_ = nodes["missing_go_to_left"].astype(bool)
        self.is_leaf_ = nodes["is_leaf"].astype(bool)
        self.left_ = np.where(self.is_leaf_, np.arange(len(nodes)), nodes["left"] + shift).astype(np.intp)
        self.right_ = np.where(self.is_leaf_, np.arange(len(nodes)), nodes["right"] + shift).astype(np.intp)
        self.value_ = nodes["value"].astype(float)
        self.depth_ = int(nodes["depth"].max())
        self.baseline_ = np.asarray(estimator._baseline_prediction, dtype=float).reshape(-1)

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
        if X.ndim != 2:
            raise ValueError(f"expected a 2-d array of cases, got shape {X.shape}")
        node = np.broadcast_to(self.roots_, (X.shape[0], self.n_trees_))
        rows = np.arange(X.shape[0])[:, None]
        for _ in range(self.depth_):  # leaves point to themselves, so extra steps are harmless
            x = X[rows, self.feature_[node]]
            go_left = np.where(np.isnan(x), self.missing_left_[node], x <= self.threshold_[node])
            node = np.where(go_left, self.left_[node], self.right_[node])
        leaves = self.value_[node].reshape(X.shape[0], -1, self.n_classes_)
        return self.baseline_ + leaves.sum(axis=1)
