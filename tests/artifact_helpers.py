"""Helpers for the artifact tests: a small fitted model, and editing an artifact by hand or
as someone who can write the model directory would (consistently, hashes recomputed)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier


def small_estimator(max_iter: int = 3, seed: int = 0) -> HistGradientBoostingClassifier:
    """A multi-class model fitted in milliseconds on 4 findings with missing values."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 4))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 1]) > 0.5) + (np.isnan(X[:, 2]))
    return HistGradientBoostingClassifier(max_iter=max_iter, min_samples_leaf=5, categorical_features=None,
                                          early_stopping=False, random_state=seed).fit(X, y)


def edit_manifest(directory: Path, edit: Callable[[dict], None]) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replace_model_file(directory: Path, content: bytes) -> None:
    """Put ``content`` in place of model.npz and update the manifest's hashes to match."""
    (directory / "model.npz").write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()

    def rehash(manifest):
        manifest["model_sha256"] = digest
        manifest["files"]["model.npz"] = digest
    edit_manifest(directory, rehash)


def model_arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / "model.npz", allow_pickle=False) as npz:
        return {name: npz[name].copy() for name in npz.files}


def rewrite_consistently(directory: Path, record_edit: Callable[[dict], None] | None = None,
                         arrays_edit: Callable[[dict], None] | None = None) -> None:
    """Change the model file (its record and/or arrays) and the manifest together, with every
    hash recomputed: what someone who can write the model directory can do."""
    arrays = model_arrays(directory)
    record = json.loads(arrays["record"].tobytes().decode("utf-8"))
    if record_edit is not None:
        record_edit(record)
        arrays["record"] = np.frombuffer(json.dumps(record).encode("utf-8"), dtype=np.uint8)
    if arrays_edit is not None:
        arrays_edit(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**record, "model_sha256": manifest["model_sha256"],
                                                         "files": manifest["files"]}))
    replace_model_file(directory, buffer.getvalue())


def assert_one_sentence(message: str) -> None:
    """A refusal a user reads: one line, one sentence, ending in a full stop, with the fix."""
    assert "\n" not in message and message.endswith(".") and "Traceback" not in message
    assert "crampdx train" in message
    assert ". " not in message.replace("e.g. ", ""), message
