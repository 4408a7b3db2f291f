"""Soft targets: each synthetic case is fitted to the generator's exact posterior.

A sampled label is one draw from p(class | findings); the generator knows that distribution
exactly (:func:`crampdx.synthetic.posterior_from_codes`), so the classifier can learn from
it instead (knowledge distillation). The loss is the cross-entropy between the exact
posterior ``p`` and the model's ``q = softmax(raw)``: its gradient is ``q - p`` and its
diagonal Hessian ``q (1 - q)``, the multinomial log loss's with ``p`` in place of a one-hot
label. A labelled case (``--data``) is a one-hot ``p``, for which this *is* the multinomial
log loss: one code path for both.

scikit-learn's gradient boosting takes a loss object through its ``loss`` parameter (a
``sklearn._loss.loss.BaseLoss``), and calls it with the encoded labels of the rows it fits
or validates on. :class:`SoftTargetLoss` ignores those labels and reads each row's target
instead, told apart by the number of rows (the training rows and the validation rows, never
the same number). The labels passed to ``fit`` only tell scikit-learn which classes exist.
One row per case: replicating a case once per probable class with weights (the route that
needs no loss object) measured 2.7 rows per case, so about 2.7x the histogram work per tree,
and it had to draw rows for the improbable classes, which made the targets noisy again.

``sklearn._loss`` is private: :func:`fit_soft_targets` checks after the fit that scikit-learn
called the loss as expected, and the tests compare a one-hot fit with scikit-learn's own
multinomial loss, so a scikit-learn release that changes the protocol fails loudly.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn._loss.loss import HalfMultinomialLoss
from sklearn.ensemble import HistGradientBoostingClassifier

__all__ = ["SoftTargetLoss", "fit_soft_targets", "over_classes", "target_classes"]


class SoftTargetLoss(HalfMultinomialLoss):
    """Cross-entropy against a probability vector per row instead of a label.

    Parameters
    ----------
    targets : numpy.ndarray
        Shape (n_rows, n_classes), rows summing to 1: the training rows' targets.
    validation_targets : numpy.ndarray
        The same for the validation rows; their number must differ from ``len(targets)``.
    training_loss : bool, default True
        If False, the training rows' loss is not computed (NaN). scikit-learn records it every
        iteration (``train_score_``) though early stopping on validation rows reads only
        theirs (:func:`fit_soft_targets` leaves it out: ~5 % of the fit).

    Attributes
    ----------
    calls_ : dict
        How often each method read each target set: ``(method, "training" | "validation") -> count``.

    Examples
    --------
    >>> import numpy as np
    >>> loss = SoftTargetLoss(np.array([[0.5, 0.5, 0.0]]), np.full((2, 3), 1 / 3))
    >>> gradient, hessian = np.empty((1, 3), dtype=np.float32), np.empty((1, 3), dtype=np.float32)
    >>> _ = loss.gradient_hessian(np.zeros(1), np.zeros((1, 3)), None, gradient, hessian)
    >>> gradient.astype(float).round(3).tolist(), hessian.astype(float).round(3).tolist()
    ([[-0.167, -0.167, 0.333]], [[0.222, 0.222, 0.222]])
    """

    def __init__(self, targets: np.ndarray, validation_targets: np.ndarray, *, training_loss: bool = True):
        targets, validation_targets = np.asarray(targets, dtype=float), np.asarray(validation_targets, dtype=float)
        if len(targets) == len(validation_targets):
            raise ValueError("the training and validation rows must differ in number (they are told apart by it)")
        super().__init__(n_classes=targets.shape[1])
        self._targets = {len(targets): ("training", targets), len(validation_targets): ("validation", validation_targets)}
        self.calls_ = {}
        self._training_loss = training_loss
        self._by_class = None  # the training targets transposed (classes x rows), made at the first iteration

    def _targets_for(self, y_true: np.ndarray, method: str) -> np.ndarray:
        return self._named_targets(y_true, method)[1]

    def _named_targets(self, y_true: np.ndarray, method: str) -> tuple[str, np.ndarray]:
        try:
            name, targets = self._targets[len(y_true)]
        except KeyError:
            raise RuntimeError(f"scikit-learn asked for the loss of {len(y_true)} rows, neither the training nor the "
                               "validation rows: this version's gradient boosting is not supported") from None
        self.calls_[method, name] = self.calls_.get((method, name), 0) + 1
        return name, targets

    def fit_intercept_only(self, y_true, sample_weight=None):
        mean = np.average(self._targets_for(y_true, "fit_intercept_only"), weights=sample_weight, axis=0)
        return self.link.link(np.clip(mean, 1e-12, 1.0)[None, :]).reshape(-1)

    def loss(self, y_true, raw_prediction, sample_weight=None, loss_out=None, n_threads=1):
        name, targets = self._named_targets(y_true, "loss")
        if name == "training" and not self._training_loss:
            out = np.full(len(targets), np.nan)
        else:
            out = logsumexp(raw_prediction, axis=1) - (targets * raw_prediction).sum(axis=1)
        if sample_weight is not None:
            out = out * sample_weight
        if loss_out is not None:
            loss_out[...] = out
            return loss_out
        return out

    def gradient_hessian(self, y_true, raw_prediction, sample_weight=None, gradient_out=None, hessian_out=None,
                         n_threads=1):
        targets = self._targets_for(y_true, "gradient_hessian")
        if self._by_class is None or self._by_class.shape[1] != len(targets):
            self._by_class = np.ascontiguousarray(targets.T)
        if gradient_out is None:
            gradient_out = np.empty(raw_prediction.shape, order="F")
        if hessian_out is None:
            hessian_out = np.empty(raw_prediction.shape, order="F")
        # On the transposes: scikit-learn's arrays are column-major (rows x classes), so each
        # class's values are contiguous there (~18 instead of ~29 ms an iteration for 32,000
        # cases x 25 classes). q = softmax(raw) as scipy computes it: shift, exp, divide by the sum.
        raw = raw_prediction.T
        q = raw - raw.max(axis=0)
        np.exp(q, out=q)
        q /= q.sum(axis=0)
        if sample_weight is None:
            np.subtract(q, self._by_class, out=gradient_out.T, casting="same_kind")
            np.multiply(q, 1.0 - q, out=hessian_out.T, casting="same_kind")
        else:
            np.multiply(q - self._by_class, sample_weight, out=gradient_out.T, casting="same_kind")
            np.multiply(q * (1.0 - q), sample_weight, out=hessian_out.T, casting="same_kind")
        return gradient_out, hessian_out

def target_classes(targets: np.ndarray) -> np.ndarray:
    """The class positions some case gives probability to: the classes a model fitted to
    ``targets`` has.

    Examples
    --------
    >>> import numpy as np
    >>> target_classes(np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])).tolist()
    [0, 2]
    """
    return np.flatnonzero(np.asarray(targets).sum(axis=0) > 0)


def over_classes(targets: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The targets restricted to ``classes`` and renormalised: which cases keep some
    probability there, and their targets (those cases only).

    Examples
    --------
    >>> import numpy as np
    >>> kept, restricted = over_classes(np.array([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]), np.array([0, 2]))
    >>> kept.tolist(), restricted.tolist()
    ([True, False], [[0.6666666666666666, 0.3333333333333333]])
    """
    restricted = np.asarray(targets, dtype=float)[:, classes]
    mass = restricted.sum(axis=1)
    kept = mass > 0
    return kept, restricted[kept] / mass[kept, None]


def fit_soft_targets(
    estimator: HistGradientBoostingClassifier,
    X: np.ndarray,
    targets: np.ndarray,
    X_val: np.ndarray,
    validation_targets: np.ndarray,
) -> HistGradientBoostingClassifier:
    """Fit ``estimator`` to probability targets, with early stopping on validation cases.

    Parameters
    ----------
    estimator : HistGradientBoostingClassifier
        Unfitted, with ``early_stopping=True`` and ``scoring="loss"``.
    X, X_val : numpy.ndarray
        Training and validation cases, one row each.
    targets, validation_targets : numpy.ndarray
        Shape (n, n_classes): column ``k`` is class position ``k``. The model's classes are
        the positions with probability in some training case; validation cases are
        renormalised over them (a case with none is left out).

    Returns
    -------
    HistGradientBoostingClassifier
        Fitted, its ``classes_`` the class positions, its loss the ordinary multinomial log
        loss again (the targets are not kept); ``validation_score_`` holds the validation
        loss of each iteration, ``train_score_`` NaN (not computed).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2))
    >>> p = np.column_stack([1 / (1 + np.exp(-X[:, 0])), 1 / (1 + np.exp(X[:, 0]))]) * [0.5, 0.5]
    >>> p = np.column_stack([p, np.full(300, 0.5)])
    >>> model = fit_soft_targets(HistGradientBoostingClassifier(max_iter=30, early_stopping=True, scoring="loss"),
    ...                          X[:200], p[:200], X[200:], p[200:])
    >>> model.classes_.tolist(), model.loss, bool(np.abs(model.predict_proba(X[200:]) - p[200:]).max() < 0.1)
    ([0, 1, 2], 'log_loss', True)
    """
    targets, validation_targets = np.asarray(targets, dtype=float), np.asarray(validation_targets, dtype=float)
    for name, value in (("training", targets), ("validation", validation_targets)):
        if not np.isfinite(value).all() or (value < 0).any() or not np.allclose(value.sum(axis=1), 1.0):
            raise ValueError(f"a {name} target is not a probability vector (NaN, negative, or not summing to 1)")
    _check_settings(estimator)
    classes = target_classes(targets)
    _, training = over_classes(targets, classes)  # every training case keeps its probability
    kept, validation = over_classes(validation_targets, classes)
    X_val = X_val[kept]
    if len(X) < len(classes) or len(X_val) < len(classes):
        raise ValueError(f"{len(classes)} classes need at least as many training cases and validation cases "
                         f"with probability on them (got {len(X)} and {len(X_val)})")
    loss = SoftTargetLoss(training, validation, training_loss=False)  # early stopping reads the validation loss
    estimator.set_params(loss=loss)
    try:
        # The labels only declare the classes (every one appears); the loss reads the targets.
        estimator.fit(X, np.resize(classes, len(X)), X_val=X_val, y_val=np.resize(classes, len(X_val)))
    finally:
        estimator.set_params(loss="log_loss")
    expected = {("fit_intercept_only", "training"): 1, ("gradient_hessian", "training"): estimator.n_iter_}
    if any(loss.calls_.get(key, 0) != count for key, count in expected.items()) or \
            loss.calls_.get(("loss", "validation"), 0) < estimator.n_iter_:
        raise RuntimeError("scikit-learn fitted without reading the soft targets as expected: this version's "
                           "gradient boosting is not supported")
    estimator._loss = HalfMultinomialLoss(n_classes=len(classes))
    return estimator


def _check_settings(estimator: HistGradientBoostingClassifier) -> None:
    """The estimator settings the soft-target fit relies on, or ValueError naming the one that is not."""
    required = {"early_stopping": True, "scoring": "loss", "class_weight": None, "warm_start": False}
    params = estimator.get_params()
    for name, value in required.items():
        if params[name] != value:
            raise ValueError(f"soft-target fitting needs {name}={value!r} (got {params[name]!r})")
