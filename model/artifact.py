"""Trained-model artifacts: a directory with ``model.joblib`` and ``manifest.json``.

Writing is atomic: the artifact is built in a temporary directory beside its destination
and moved into place with ``os.replace``, so a crash never leaves half an artifact and a
reader never sees one. Loading verifies, *before unpickling anything*, that the manifest is
readable, that ``model.joblib`` has the SHA-256 the manifest records, that the library
versions it was written with are the ones running now, and that the finding schema is the
one this code uses. Loading a joblib file runs code: only artifacts this tool wrote, and
that pass these checks, are ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Mapping

import joblib

__all__ = [
    "ARTIFACT_FORMAT_VERSION",
    "ArtifactError",
    "default_artifact_dir",
    "library_versions",
    "read_artifact",
    "write_artifact",
]

ARTIFACT_FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
ENV_VAR = "CRAMPDX_MODEL"
_LIBRARIES = ("scikit-learn", "shap", "numpy", "pandas", "joblib")
_RETRAIN = "run `crampdx train` to train a model with the libraries installed now"


class ArtifactError(RuntimeError):
    """A model artifact is missing, damaged or does not match this installation."""


def default_artifact_dir() -> Path:
    """``$CRAMPDX_MODEL`` if set, else ``model/artifacts/default`` inside the package."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(__file__).parent / "artifacts" / "default"


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a pickled model depends on."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[name] = "not installed"
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_artifact(
    directory: str | Path,
    estimator: Any,
    manifest: Mapping[str, Any],
    extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write an artifact atomically.

    Parameters
    ----------
    directory : path
        Destination directory; an existing artifact there is replaced only once the new
        one is complete.
    estimator : object
        The fitted estimator to pickle with joblib.
    manifest : mapping
        Everything the manifest should say besides what this function adds (format
        version, creation time, model hash, library versions).
    extra_files : callable, optional
        Called with the temporary directory to add files (model card, plots) before the
        artifact is moved into place.

    Returns
    -------
    pathlib.Path
        The destination directory.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.staging-"))
    try:
        joblib.dump(estimator, staging / MODEL_FILE)
        full = {
            "format_version": ARTIFACT_FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model_file": MODEL_FILE,
            "model_sha256": _sha256(staging / MODEL_FILE),
            "versions": library_versions(),
            **manifest,
        }
        if extra_files is not None:
            extra_files(staging)
        (staging / MANIFEST_FILE).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _swap_into_place(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def _swap_into_place(staging: Path, directory: Path) -> None:
    """Move ``staging`` to ``directory``; the old artifact stays until the new one is there."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    retired = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.retired-"))
    os.rmdir(retired)
    os.replace(directory, retired)
    try:
        os.replace(staging, directory)
    except BaseException:
        os.replace(retired, directory)  # put the previous artifact back
        raise
    shutil.rmtree(retired, ignore_errors=True)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``manifest.json`` (no unpickling)."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file() or not (directory / MODEL_FILE).is_file():
        raise ArtifactError(f"No trained model at {directory}: run `crampdx train` (or point CRAMPDX_MODEL at a model directory).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"The model manifest {manifest_path} is unreadable ({error}); run `crampdx train` to rebuild the model.") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != ARTIFACT_FORMAT_VERSION:
        raise ArtifactError(f"The model at {directory} has an unknown artifact format; {_RETRAIN}.")
    return manifest


def check_versions(manifest: Mapping[str, Any]) -> None:
    """Refuse a model written with other library versions (pickles are not portable)."""
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
        raise ArtifactError(f"The model was trained with {', '.join(mismatched)}; {_RETRAIN}.")


def read_artifact(directory: str | Path, *, expected: Mapping[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Verify and load an artifact.

    Parameters
    ----------
    directory : path
        The artifact directory.
    expected : mapping, optional
        Manifest entries that must match exactly (e.g. the schema hash), name -> value.

    Returns
    -------
    estimator, manifest

    Raises
    ------
    ArtifactError
        With one sentence saying what is wrong and how to fix it: missing files, unreadable
        manifest, a model file whose hash differs from the manifest's, other library
        versions, a different finding schema.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    check_versions(manifest)
    for key, value in (expected or {}).items():
        if manifest.get(key) != value:
            what = key.replace("_", " ")
            raise ArtifactError(f"The model at {directory} was trained for a different {what}; run `crampdx train` to retrain it.")
    model_path = directory / MODEL_FILE
    if _sha256(model_path) != manifest.get("model_sha256"):
        raise ArtifactError(
            f"{model_path} does not match the hash in its manifest (modified or damaged); "
            "it was not loaded. Run `crampdx train` to rebuild the model.")
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            estimator = joblib.load(model_path)
        except InconsistentVersionWarning as warning:
            raise ArtifactError(f"The model was pickled by scikit-learn {warning.original_sklearn_version}; {_RETRAIN}.") from None
        except Exception as error:  # a verified file that still fails to load
            raise ArtifactError(f"{model_path} could not be loaded ({type(error).__name__}); run `crampdx train` to rebuild the model.") from None
    return estimator, manifest
