"""Verify a model artifact, then load it.

Loading verifies, *before unpickling anything*, that the manifest is readable, that the
library versions it was written with are the ones running now, that it was trained for
this finding schema **and this knowledge base** (their hashes), and that ``model.joblib``
has the SHA-256 the manifest records. After unpickling, the model itself must fit: its
classes are the knowledge base's, in the manifest's order, and the temperature is a positive
number. Every refusal is one sentence saying what is wrong and which ``crampdx train``
command fixes it. Loading a joblib file runs code: only artifacts this tool wrote, and that
pass these checks, are ever unpickled.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from pathlib import Path
from typing import Any, Mapping

import joblib
import numpy as np
from sklearn.exceptions import InconsistentVersionWarning

from crampdx.model.artifact import (ARTIFACT_FORMAT_VERSION, MANIFEST_FILE, MODEL_FILE, ArtifactError,
                                    default_artifact_dir, library_versions, retrain_advice, retrain_command, sha256_of)
from crampdx.synthetic.kb import KnowledgeBase

__all__ = ["check_model_fits", "check_versions", "load_model", "read_artifact", "read_manifest"]


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``manifest.json`` (no unpickling).

    Raises
    ------
    ArtifactError
        No model there, an unreadable manifest or an unknown artifact format.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file() or not (directory / MODEL_FILE).is_file():
        raise ArtifactError(f"No trained model at {directory}: run `{retrain_command(directory)}` "
                            "(or point CRAMPDX_MODEL at a model directory).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"The model manifest {manifest_path} is unreadable ({error}); "
                            f"run `{retrain_command(directory)}` to rebuild the model.") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != ARTIFACT_FORMAT_VERSION:
        raise ArtifactError(f"The model at {directory} has an unknown artifact format; {retrain_advice(directory)}.")
    return manifest


def check_versions(manifest: Mapping[str, Any], directory: str | Path | None = None) -> None:
    """Refuse a model written with other library versions (pickles are not portable).

    ``directory`` (default: the default artifact directory) only shapes the advice given.
    """
    recorded = manifest.get("versions", {})
    running = library_versions()
    mismatched = []
    for name, now in running.items():
        then = str(recorded.get(name))
        if name == "python":  # the pickle format depends on the minor version only
            same = then.split(".")[:2] == now.split(".")[:2]
        else:
            same = then == now
        if not same:
            mismatched.append(f"{name} {then} (now {now})")
    if mismatched:
        where = directory if directory is not None else default_artifact_dir()
        raise ArtifactError(f"The model was trained with {', '.join(mismatched)}; {retrain_advice(where)}.")


_BOUND_TO = {
    "schema_sha256": "finding schema (the findings a case can hold)",
    "knowledge_sha256": "knowledge base (the classes and the numbers cases are generated from)",
}


def load_model(directory: str | Path, knowledge: KnowledgeBase) -> tuple[Any, dict[str, Any]]:
    """Verify and load a model trained under ``knowledge`` (and its finding schema).

    :func:`read_artifact` with the schema and knowledge-base hashes expected, then
    :func:`check_model_fits`.

    Raises
    ------
    ArtifactError
        With one sentence saying what is wrong and how to fix it.
    """
    directory = Path(directory)
    expected = {"schema_sha256": knowledge.schema.hash, "knowledge_sha256": knowledge.sha256}
    estimator, manifest = read_artifact(directory, expected=expected)
    check_model_fits(estimator, manifest, knowledge, directory)
    return estimator, manifest


def read_artifact(directory: str | Path, *, expected: Mapping[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Verify and unpickle an artifact.

    Parameters
    ----------
    directory : path
    expected : mapping, optional
        Manifest entries that must match exactly (the schema and knowledge-base hashes).

    Returns
    -------
    estimator, manifest

    Raises
    ------
    ArtifactError
        With one sentence saying what is wrong and how to fix it: missing files, unreadable
        manifest, other library versions, another finding schema or knowledge base, or a
        model file whose hash differs from the manifest's.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    check_versions(manifest, directory)
    for key, value in (expected or {}).items():
        if manifest.get(key) != value:
            what = _BOUND_TO.get(key, key.replace("_", " "))
            raise ArtifactError(f"The model at {directory} was trained under another {what} than the one "
                                f"installed; run `{retrain_command(directory)}` to retrain it.")
    model_path = directory / MODEL_FILE
    if sha256_of(model_path) != manifest.get("model_sha256"):
        raise ArtifactError(
            f"{model_path} does not match the hash in its manifest (modified or damaged); "
            f"it was not loaded. Run `{retrain_command(directory)}` to rebuild the model.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            estimator = joblib.load(model_path)
        except InconsistentVersionWarning as warning:
            raise ArtifactError(f"The model was pickled by scikit-learn {warning.original_sklearn_version}; "
                                f"{retrain_advice(directory)}.") from None
        except Exception as error:  # a verified file that still fails to load
            raise ArtifactError(f"{model_path} could not be loaded ({type(error).__name__}); "
                                f"run `{retrain_command(directory)}` to rebuild the model.") from None
    return estimator, manifest


def check_model_fits(estimator: Any, manifest: Mapping[str, Any], knowledge: KnowledgeBase, directory: Path) -> None:
    """The manifest's temperature and classes must fit the unpickled model and the knowledge base.

    Only ``model.joblib`` is hashed, and these entries decide what an output means.
    """
    rebuild = f"run `{retrain_command(directory)}` to rebuild the model"
    temperature = manifest.get("temperature")
    if (not isinstance(temperature, numbers.Real) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature <= 0):
        raise ArtifactError(f"The manifest at {directory} has no valid temperature (a positive number is needed, "
                            f"it records {temperature!r}); {rebuild}.")
    classes = manifest.get("classes")
    if (not isinstance(classes, list) or not classes
            or not all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in classes)):
        raise ArtifactError(f"The manifest at {directory} lacks a valid list of classes; {rebuild}.")
    kb_ids = knowledge.class_ids
    codes = np.asarray(getattr(estimator, "classes_", []))
    if (codes.ndim != 1 or not len(codes) or not np.issubdtype(codes.dtype, np.integer)
            or codes.min() < 0 or codes.max() >= len(kb_ids)):
        raise ArtifactError(f"The model at {directory} does not predict the etiology classes of the knowledge base; {rebuild}.")
    manifest_ids = [c["id"] for c in classes]
    if len(manifest_ids) != len(codes):
        raise ArtifactError(f"The manifest at {directory} lists {len(manifest_ids)} classes but the model predicts {len(codes)} "
                            f"(modified or damaged); {rebuild}.")
    if manifest_ids != [kb_ids[int(code)] for code in codes]:
        raise ArtifactError(f"The classes in the manifest at {directory} are not the model's classes of the knowledge base, "
                            f"in the model's order (modified or damaged, or the knowledge base changed); {rebuild}.")
