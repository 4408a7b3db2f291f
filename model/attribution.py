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

__all__ = ["TreeAttribution"]


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

    def class_explainer(self, k: int):
        """shap's TreeExplainer over class ``k``'s trees (shap orders the model's trees iteration
        by iteration, a tree per class in each), built when first asked for: each takes ~0.07 s
        for the default model, and an assessment explains one or a few causes of 25. Call
        with the lock held (:meth:`shap_values` does)."""
        if k not in self._class_explainers:
            import shap  # see explainer

            trees, n_classes = self.explainer.model.trees, len(self.estimator.classes_)
            self._class_explainers[k] = shap.TreeExplainer(trees[k::n_classes], feature_perturbation="tree_path_dependent",
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
            baseline = np.asarray(self.explainer.model.base_offset, dtype=float).reshape(-1)
            explainers = [self.class_explainer(k) for k in classes]
            values = np.stack([np.asarray(e.shap_values(codes, check_additivity=False)) for e in explainers], axis=-1)
        base = np.array([float(np.reshape(e.expected_value, -1)[0]) for e in explainers]) + baseline[list(classes)]
        return values, base
