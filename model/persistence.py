"""The fitted model as plain numbers (``model.npz``): saved and read without pickle.

``model.npz`` holds numpy arrays only, read with ``allow_pickle=False``: every tree's nodes
(scikit-learn's own node record), the trees' sizes, the baseline scores, the class positions
in the knowledge base, the number of findings, and the record (the manifest's content as
UTF-8 JSON, so the temperature, the metrics and everything else the manifest says are
covered by the model file's hash). Reading rebuilds a ``HistGradientBoostingClassifier``
from them, so scikit-learn's batch prediction, shap's TreeExplainer and the compiled forest
work on it unchanged.

Threat model. Against accidental damage (a byte flipped, a manifest edited by hand, a
partial copy) the hashes suffice. Anyone who can write the model directory can replace the
model with another one and recompute the hashes (there is no signature), and so change what
clinicians see; what they can no longer do is run code: nothing here unpickles, and every
array is checked (dtypes, shapes, node links within each tree, feature indices, finite
values) before scikit-learn's compiled code, the compiled forest or the compiled batches
(which read without bounds checks) walk it, so a damaged or hostile file ends in
:class:`ModelFileError`, one phrase saying what is wrong. Keep the model directory writable
only by the user who runs crampdx.

The rebuilt estimator sets scikit-learn's private fitted attributes; that is safe because
an artifact loads only under the scikit-learn version it was written with (the manifest's
versions are checked first) and the tests compare the rebuilt model with the fitted one.
"""

from __future__ import annotations

import io
import json
from typing import Any, Mapping

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE, X_BITSET_INNER_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

__all__ = ["ModelFileError", "model_file_bytes", "read_model_file"]

# The arrays of model.npz: name -> (dtype, number of dimensions).
_ARRAYS = {
    "nodes": (PREDICTOR_RECORD_DTYPE, 1),
    "tree_sizes": (np.dtype(np.int64), 1),
    "baseline": (np.dtype(np.float64), 1),
    "classes": (np.dtype(np.int64), 1),
    "n_features": (np.dtype(np.int64), 0),
    "record": (np.dtype(np.uint8), 1),
}
_ZIP_MAGIC = b"PK\x03\x04"
_NO_CATEGORIES = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)  # no categorical splits (see fit.py)


class ModelFileError(ValueError):
    """``model.npz`` is not a model this version of crampdx wrote; the message says why."""


def model_file_bytes(estimator: HistGradientBoostingClassifier, record: Mapping[str, Any]) -> bytes:
    """The content of ``model.npz`` for a fitted multi-class model and its record (see
    :func:`read_model_file` for an example).

    Raises
    ------
    ValueError
        The estimator has categorical splits or fewer than three classes.
    """
    trees = [predictor.nodes for iteration in estimator._predictors for predictor in iteration]
    if estimator.n_trees_per_iteration_ < 3 or any(nodes["is_categorical"].any() for nodes in trees):
        raise ValueError("only multi-class models without categorical splits can be saved")
    arrays = {
        "nodes": np.concatenate(trees).astype(PREDICTOR_RECORD_DTYPE),
        "tree_sizes": np.array([len(nodes) for nodes in trees], dtype=np.int64),
        "baseline": np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1),
        "classes": np.asarray(estimator.classes_, dtype=np.int64),
        "n_features": np.array(estimator.n_features_in_, dtype=np.int64),
        "record": np.frombuffer(json.dumps(record, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # uncompressed: it loads faster and its size is what it says
    return buffer.getvalue()


def read_model_file(content: bytes, n_features: int | None = None) -> tuple[HistGradientBoostingClassifier, dict[str, Any]]:
    """Check the content of a ``model.npz`` and rebuild the estimator and the record.

    Parameters
    ----------
    content : bytes
        The file's content (read once, hashed, then parsed: no second read to swap).
    n_features : int, optional
        The number of findings the model must use (the finding schema's).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> X, y = np.arange(300.0).reshape(100, 3), np.arange(100) % 3
    >>> fitted = HistGradientBoostingClassifier(max_iter=2, min_samples_leaf=5, categorical_features=None).fit(X, y)
    >>> rebuilt, record = read_model_file(model_file_bytes(fitted, {"temperature": 1.5}))
    >>> record, bool((rebuilt.decision_function(X) == fitted.decision_function(X)).all())
    ({'temperature': 1.5}, True)
    >>> try:
    ...     read_model_file(b"not a model")
    ... except ModelFileError as error:
    ...     print(error)
    it is not an array archive (.npz)

    Raises
    ------
    ModelFileError
        Anything that is not what :func:`model_file_bytes` writes: an array missing, of
        another type or shape, an object array (a pickle), a tree whose links leave it or
        loop, a feature index beyond the findings, a value that is not finite.
    """
    arrays = _read_arrays(content)
    if n_features is not None and int(arrays["n_features"]) != n_features:
        raise ModelFileError(f"it uses {int(arrays['n_features'])} findings where the finding schema has {n_features}")
    record = _read_record(arrays["record"])
    try:
        estimator = _rebuild(arrays)
    except MemoryError:
        raise ModelFileError("it declares more findings than fit in memory") from None
    return estimator, record


def _read_arrays(content: bytes) -> dict[str, np.ndarray]:
    if not content.startswith(_ZIP_MAGIC):  # np.load would take anything else for a pickle or one array
        raise ModelFileError("it is a pickle, which is never loaded" if content.startswith(b"\x80")
                             else "it is not an array archive (.npz)")
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as npz:
            if set(npz.files) != set(_ARRAYS):
                raise ModelFileError(f"it holds the arrays {', '.join(name[:40] for name in sorted(npz.files)[:8]) or 'none'} instead of "
                                     f"{', '.join(sorted(_ARRAYS))}")
            arrays = {name: npz[name] for name in _ARRAYS}
    except ModelFileError:
        raise
    except Exception as error:  # numpy's header parser alone raises SyntaxError, TokenError, ValueError...: all "malformed"
        reason = "it holds Python objects (a pickle), which are never loaded" if "allow_pickle" in str(error) else \
            f"it is not a readable array archive ({type(error).__name__})"
        raise ModelFileError(reason) from None
    for name, (dtype, ndim) in _ARRAYS.items():
        if arrays[name].dtype != dtype or arrays[name].ndim != ndim:
            raise ModelFileError(f"its array {name!r} has type {arrays[name].dtype} and {arrays[name].ndim} dimension(s), "
                                 f"expected {dtype} and {ndim}")
    _check_forest(arrays)
    return arrays


def _read_record(raw: np.ndarray) -> dict[str, Any]:
    try:
        record = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        raise ModelFileError("its record is not a JSON object")
    return record


def _check_forest(arrays: Mapping[str, np.ndarray]) -> None:
    """The trees are trees over the model's findings, with finite numbers, or ModelFileError."""
    nodes, sizes, classes = arrays["nodes"], arrays["tree_sizes"], arrays["classes"]
    n_classes, n_features = len(classes), int(arrays["n_features"])
    if n_classes < 3 or np.any(classes < 0) or np.any(np.diff(classes) <= 0):
        raise ModelFileError("its classes are not three or more distinct positions in increasing order")
    if arrays["baseline"].shape != (n_classes,) or not np.isfinite(arrays["baseline"]).all():
        raise ModelFileError("its baseline scores do not match its classes or are not finite")
    if n_features < 1:
        raise ModelFileError("it uses no findings")
    if not len(sizes) or len(sizes) % n_classes or np.any(sizes < 1) or sizes.sum() != len(nodes):
        raise ModelFileError("its tree sizes do not add up to its nodes, one tree per class and iteration")
    size = np.repeat(sizes, sizes)
    local = np.arange(len(nodes)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    inner = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    # A child after its parent, inside the tree: every walk from the root ends at a leaf.
    links_ok = ((left > local) & (left < size) & (right > local) & (right < size))[inner]
    if not links_ok.all():
        raise ModelFileError("a tree has a node whose branches point outside the tree or backwards")
    start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    children = np.concatenate([(start + left)[inner], (start + right)[inner]])
    parents = np.bincount(children, minlength=len(nodes))
    roots = local == 0
    if np.any(parents[~roots] != 1) or np.any(parents[roots] != 0):
        raise ModelFileError("a tree has a node reached by no branch or by several")
    depth = nodes["depth"].astype(np.int64)
    child_depth_ok = (depth[(start + left)[inner]] == depth[inner] + 1) & (depth[(start + right)[inner]] == depth[inner] + 1)
    if np.any(depth[roots] != 0) or not child_depth_ok.all():
        raise ModelFileError("a tree records depths that do not follow its branches")
    feature = nodes["feature_idx"][inner]
    if np.any(feature < 0) or np.any(feature >= n_features):
        raise ModelFileError(f"a split uses a finding beyond the model's {n_features}")
    if (not np.isfinite(nodes["value"]).all() or np.isnan(nodes["num_threshold"][inner]).any()
            or np.any(nodes["is_leaf"] > 1) or np.any(nodes["missing_go_to_left"] > 1) or nodes["is_categorical"].any()):
        raise ModelFileError("a node holds a value that is not finite, a threshold that is not a number, or a flag "
                             "that is not 0 or 1")
    counts = nodes["count"].astype(np.int64)
    if np.any(counts < 1) or np.any(counts[inner] != counts[(start + left)[inner]] + counts[(start + right)[inner]]):
        # shap's path-dependent explanation weighs branches by these counts
        raise ModelFileError("a tree's case counts do not add up along its branches")


def _rebuild(arrays: Mapping[str, np.ndarray]) -> HistGradientBoostingClassifier:
    nodes, sizes = arrays["nodes"], arrays["tree_sizes"]
    n_classes, n_features = len(arrays["classes"]), int(arrays["n_features"])
    trees = np.split(nodes, np.cumsum(sizes)[:-1])
    predictors = [[TreePredictor(tree, _NO_CATEGORIES, _NO_CATEGORIES) for tree in trees[i:i + n_classes]]
                  for i in range(0, len(trees), n_classes)]
    estimator = HistGradientBoostingClassifier(categorical_features=None)
    bin_mapper = _BinMapper()
    bin_mapper.is_categorical_ = np.zeros(n_features, dtype=np.uint8)
    bin_mapper.bin_thresholds_ = []
    bin_mapper.missing_values_bin_idx_ = bin_mapper.n_bins - 1
    fitted = {
        "classes_": arrays["classes"],
        "n_trees_per_iteration_": n_classes,
        "n_features_in_": n_features,
        "_n_features": n_features,
        "is_categorical_": None,
        "_preprocessor": None,
        "_is_categorical_remapped": None,
        "_bin_mapper": bin_mapper,
        "_baseline_prediction": arrays["baseline"].reshape(1, n_classes),
        "_predictors": predictors,
        "train_score_": np.asarray([]),
        "validation_score_": np.asarray([]),
    }
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator._loss = estimator._get_loss(sample_weight=None)
    return estimator
