"""Verify a model artifact, then load it, without running anything it holds.

Loading checks, in this order: the manifest is readable and of the current format (an
artifact of the earlier pickle format, ``model.joblib``, is refused unread); the library
versions it was written with are the ones running now; it was trained for this finding
schema **and this knowledge base** (their hashes); every file the manifest lists has the
SHA-256 it records (the model file is read once, hashed, then parsed from the same bytes).
Then ``model.npz`` is read as plain arrays and checked (:mod:`crampdx.model.persistence`),
the manifest must equal the record saved inside it (so the temperature, the classes, the
metrics and every other entry are covered by the model file's hash), the temperature must
lie in the range training fits it in, and the classes must be the knowledge base's. Class
names and ICD-10 codes are never taken from the artifact: they come from the knowledge base.
Every refusal is one sentence saying what is wrong and which ``crampdx train`` command
fixes it. Who can write the model directory can still swap in another model (the hashes are
not a signature): keep it writable only by the user who runs crampdx.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from crampdx.model.artifact import (ARTIFACT_FORMAT_VERSION, FILES_KEY, HASH_KEYS, LEGACY_FORMAT_VERSION, MANIFEST_FILE,
                                    MODEL_FILE, ArtifactError, default_artifact_dir, library_versions, retrain_advice,
                                    retrain_command, sha256_of)
from crampdx.model.persistence import ModelFileError, read_model_file
from crampdx.synthetic.kb import KnowledgeBase

__all__ = ["TEMPERATURE_RANGE", "check_model_fits", "check_versions", "load_model", "read_artifact", "read_manifest"]

# The bounds training's fit_temperature searches in (it reads them here): anything outside was not fitted.
TEMPERATURE_RANGE = (0.05, 20.0)
_ROUNDING = 1e-6  # relative slack for a temperature found at a bound


def _rebuild(directory: Path) -> str:
    return f"run `{retrain_command(directory)}` to rebuild the model"


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``manifest.json`` (the model file is not read).

    Raises
    ------
    ArtifactError
        No model there, an unreadable manifest, an artifact of the earlier pickle format or
        of an unknown one, or a manifest without its files' hashes.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactError(f"No trained model at {directory}: run `{retrain_command(directory)}` "
                            "(or point CRAMPDX_MODEL at a model directory).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ArtifactError(f"The model manifest {manifest_path} is unreadable ({type(error).__name__}); "
                            f"{_rebuild(directory)}.") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version == LEGACY_FORMAT_VERSION:
        raise ArtifactError(f"The model at {directory} was saved by an earlier crampdx as a pickle (model.joblib), which "
                            f"could run code when loaded, so it was not loaded; run `{retrain_command(directory)}` to "
                            "retrain it in the current format.")
    if version != ARTIFACT_FORMAT_VERSION:
        raise ArtifactError(f"The model at {directory} has an unknown artifact format; {retrain_advice(directory)}.")
    files = manifest.get(FILES_KEY)
    if (not isinstance(files, dict) or MODEL_FILE not in files
            or not all(isinstance(name, str) and isinstance(digest, str) for name, digest in files.items())):
        raise ArtifactError(f"The manifest at {directory} does not list its files' hashes (modified or damaged); "
                            f"{_rebuild(directory)}.")
    return manifest


def check_versions(manifest: Mapping[str, Any], directory: str | Path | None = None) -> None:
    """Refuse a model written with other library versions.

    ``directory`` (default: the default artifact directory) only shapes the advice given.
    """
    recorded = manifest.get("versions")
    recorded = recorded if isinstance(recorded, dict) else {}
    running = library_versions()
    mismatched = []
    for name, now in running.items():
        then = str(recorded.get(name))
        if name == "python":  # a patch release changes nothing the model depends on
            same = then.split(".")[:2] == now.split(".")[:2]
        else:
            same = then == now
        if not same:
            mismatched.append(f"{name} {then[:40]} (now {now})")
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
    estimator, manifest = read_artifact(directory, expected=expected, n_features=len(knowledge.schema.ids))
    check_model_fits(estimator, manifest, knowledge, directory)
    return estimator, manifest


def read_artifact(directory: str | Path, *, expected: Mapping[str, str] | None = None,
                  n_features: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Verify an artifact and rebuild its model from plain arrays.

    Parameters
    ----------
    directory : path
    expected : mapping, optional
        Manifest entries that must match exactly (the schema and knowledge-base hashes).
    n_features : int, optional
        The number of findings the model must use.

    Returns
    -------
    estimator, manifest

    Raises
    ------
    ArtifactError
        With one sentence saying what is wrong and how to fix it: missing files, unreadable
        manifest, other library versions, another finding schema or knowledge base, a file
        whose hash differs from the manifest's, a model file that is not plain, well-formed
        arrays, or a manifest that differs from the record inside the model file.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    check_versions(manifest, directory)
    for key, value in (expected or {}).items():
        if manifest.get(key) != value:
            what = _BOUND_TO.get(key, key.replace("_", " "))
            raise ArtifactError(f"The model at {directory} was trained under another {what} than the one "
                                f"installed; run `{retrain_command(directory)}` to retrain it.")
    files = manifest[FILES_KEY]
    model_path = directory / MODEL_FILE
    if not model_path.is_file():  # never read a FIFO or a device, whatever the link says
        raise _hash_mismatch(model_path, directory)
    try:
        content = model_path.read_bytes()
    except OSError as error:
        raise ArtifactError(f"The model file {model_path} cannot be read ({error.strerror or error}); "
                            f"{_rebuild(directory)}.") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != files[MODEL_FILE] or digest != manifest.get("model_sha256"):
        raise _hash_mismatch(model_path, directory)
    for name, recorded in files.items():
        path = directory / name
        if name != MODEL_FILE and (Path(name).name != name or not path.is_file() or sha256_of(path) != recorded):
            raise _hash_mismatch(path, directory)
    try:
        estimator, record = read_model_file(content, n_features)
    except ModelFileError as error:
        raise ArtifactError(f"{model_path} is not a model crampdx wrote ({error}), so it was not used; "
                            f"{_rebuild(directory)}.") from None
    _check_manifest_is_the_record(manifest, record, directory)
    return estimator, manifest


def _hash_mismatch(path: Path, directory: Path) -> ArtifactError:
    return ArtifactError(f"{path} is missing or does not match the hash in its manifest (modified or damaged), so the "
                         f"model was not loaded; {_rebuild(directory)}.")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _check_manifest_is_the_record(manifest: Mapping[str, Any], record: Mapping[str, Any], directory: Path) -> None:
    """Every entry of manifest.json but the hashes must be what model.npz recorded at training."""
    keys = [k for k in dict.fromkeys([*manifest, *record]) if k not in HASH_KEYS]
    changed = [k for k in keys if _canonical(manifest.get(k)) != _canonical(record.get(k))]
    if changed:
        raise ArtifactError(f"The manifest at {directory} differs from the record saved inside {MODEL_FILE} in "
                            f"{changed[0][:40]!r} (edited after training, or damaged), so the model was not loaded; "
                            f"{_rebuild(directory)}.")


def check_model_fits(estimator: Any, manifest: Mapping[str, Any], knowledge: KnowledgeBase, directory: Path) -> None:
    """The recorded temperature must be one training can fit, and the model's classes the
    knowledge base's (in the model's order, as the record lists them)."""
    rebuild = _rebuild(directory)
    temperature = manifest.get("temperature")
    low, high = TEMPERATURE_RANGE
    if (not isinstance(temperature, numbers.Real) or isinstance(temperature, bool) or not math.isfinite(temperature)
            or not low * (1 - _ROUNDING) <= temperature <= high * (1 + _ROUNDING)):
        raise ArtifactError(f"The model at {directory} records no valid temperature (training fits one between {low} "
                            f"and {high:.0f}, it records {str(temperature)[:40]}); {rebuild}.")
    kb_ids = knowledge.class_ids
    codes = np.asarray(getattr(estimator, "classes_", []))
    if (codes.ndim != 1 or not len(codes) or not np.issubdtype(codes.dtype, np.integer)
            or codes.min() < 0 or codes.max() >= len(kb_ids)):
        raise ArtifactError(f"The model at {directory} does not predict the etiology classes of the knowledge base; {rebuild}.")
    classes = manifest.get("classes")
    recorded = [c.get("id") for c in classes if isinstance(c, dict)] if isinstance(classes, list) else None
    if recorded != [kb_ids[int(code)] for code in codes]:
        raise ArtifactError(f"The classes the model at {directory} records are not its classes of the knowledge base, "
                            f"in its order (damaged, or the knowledge base changed); {rebuild}.")
