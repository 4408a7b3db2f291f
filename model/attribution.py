"""SHAP values of the gradient-boosting model, for every class or only the classes explained.

A multi-class gradient-boosting model grows one tree per class and iteration, and a class's
raw score is the sum of its own trees (plus the class's baseline). So the SHAP values of one
class come from that class's trees alone, exactly as the all-class explainer computes them
for that column: explaining one cause walks 1/K of the forest.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from crampdx.model.forest import refuse_categorical_splits

__all__ = ["TreeAttribution", "tree_dictionary"]


def tree_dictionary(nodes: np.ndarray) -> dict[str, np.ndarray]:
    """One fitted tree (scikit-learn's node array of a ``HistGradientBoostingClassifier``
    predictor) in shap's dictionary format: the same fields shap reads from the model itself
    (a leaf has no children and feature -2; missing values follow ``missing_go_to_left``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    >>> nodes = np.zeros(3, dtype=PREDICTOR_RECORD_DTYPE)
    >>> nodes[0] = (0.0, 10, 4, 2.5, 1, 1, 2, 0.1, 0, 0, 3, 0, 0)  # a split on finding 4 at 2.5
    >>> nodes[1]["value"], nodes[1]["count"], nodes[1]["is_leaf"] = -0.2, 6, 1
    >>> nodes[2]["value"], nodes[2]["count"], nodes[2]["is_leaf"] = 0.3, 4, 1
    >>> tree = tree_dictionary(nodes)
    >>> tree["children_left"].tolist(), tree["children_default"].tolist(), tree["features"].tolist()
    ([1, -1, -1], [1, -1, -1], [4, -2, -2])
    """
    refuse_categorical_splits(nodes)  # shap would read such a split as numeric
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))  # unsigned in the node array
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    return {"children_left": left, "children_right": right,
            "children_default": np.where(nodes["missing_go_to_left"].astype(bool), left, right),
            "features": np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)),
            "thresholds": nodes["num_threshold"].astype(np.float64),
            "values": nodes["value"].astype(np.float64)[:, None],
            "node_sample_weight": nodes["count"].astype(np.float64)}


class TreeAttribution:
    """Path-dependent TreeSHAP of a fitted ``HistGradientBoostingClassifier`` (raw log-odds).

    No background data is needed, and "not assessed" follows the trees' learned
    missing-value branches. Thread-safe: shap's explainers mutate themselves while they
    work, so one lock serialises them (dashboard sessions and service requests share one).

    Parameters
    ----------
    estimator : sklearn.ensemble.HistGradientBoostingClassifier
        Fitted on three or more classes.
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator
        self._lock = threading.Lock()
        self._class_explainers: dict[int, Any] = {}

    @cached_property
    def explainer(self):
        """shap's TreeExplainer over the whole model (every class)."""
        import shap  # about a second to import, and only explanations need it (not batch ranking)

        return shap.TreeExplainer(self.estimator, feature_perturbation="tree_path_dependent", model_output="raw")

    def _class_explainer(self, k: int):
        """shap's TreeExplainer over class ``k``'s trees, built when first asked for (an
        assessment explains one or a few causes of 25). Called with the lock held, by
        :meth:`shap_values`.

        The trees are handed to shap in its dictionary format for a model, built from each
        tree's node array in a few numpy operations: shap's own reading of a scikit-learn
        model walks every node of every class's trees in Python. For the default model
        (2026-12-04, 458 iterations): the first assessment after a load 1.16 s that way
        against 0.22 s this way; every other cause's explainer then ~0.017 s
        (``python bench/bench_diagnoser.py``).
        """
        if k not in self._class_explainers:
            import shap  # see explainer

            trees = [tree_dictionary(iteration[k].nodes) for iteration in self.estimator._predictors]
            model = {"trees": trees, "tree_output": "raw_value"}
            self._class_explainers[k] = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent",
                                                           model_output="raw")
        return self._class_explainers[k]

    def shap_values(self, codes: np.ndarray, classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw SHAP values (n, n_findings, n_classes) and base values (n_classes,), or only
        for the class positions ``classes`` (the last axis in that order)."""
        codes = np.asarray(codes, dtype=float)
        with self._lock:
            if classes is None:
                values = np.asarray(self.explainer.shap_values(codes, check_additivity=False))
                return values, np.asarray(self.explainer.expected_value, dtype=float).reshape(-1)
            baseline = np.asarray(self.estimator._baseline_prediction, dtype=float).reshape(-1)
            explainers = [self._class_explainer(k) for k in classes]
            values = np.stack([np.asarray(e.shap_values(codes, check_additivity=False)) for e in explainers], axis=-1)
        base = np.array([float(np.reshape(e.expected_value, -1)[0]) for e in explainers]) + baseline[list(classes)]
        return values, base
