"""Trained-model artifacts: a directory with ``model.npz``, ``manifest.json`` and the model card.

``model.npz`` is plain arrays (:mod:`crampdx.model.persistence`, never a pickle) and holds
the manifest's content too; ``manifest.json`` is a readable copy of it plus the SHA-256 of
every other file of the artifact. Writing is atomic: the artifact is built in a staging
directory beside its destination and moved into place with ``os.replace``, so a crash never
leaves half an artifact and a reader never sees one; the next write removes the staging
directories of killed runs (:mod:`crampdx.model.staging`). Reading and verifying is
:mod:`crampdx.model.loading`.

The default model directory is a per-user data directory (``platformdirs``), never inside
the installed package; ``$CRAMPDX_MODEL`` overrides it, and the command line, the dashboard
and the service all take it from :func:`default_artifact_dir`.

Writing never destroys anything but an earlier model: the destination must be new, an empty
directory or an existing model directory (:func:`check_artifact_target`, which training
calls before it starts so a wrong ``--out`` is refused in a second, not after minutes).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Mapping

import platformdirs

from crampdx.errors import UserFacingError
from crampdx.files import current_umask
from crampdx.model.persistence import model_file_bytes
from crampdx.model.staging import staging_beside, swap_into_place

__all__ = [
    "ARTIFACT_FORMAT_VERSION",
    "builtin_artifact_dir",
    "retrain_advice",
    "ArtifactError",
    "check_artifact_target",
    "default_artifact_dir",
    "library_versions",
    "retrain_command",
    "sha256_of",
    "write_artifact",
]

ARTIFACT_FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1  # model.joblib, a pickle: refused, never loaded
MODEL_FILE = "model.npz"
LEGACY_MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
FILES_KEY = "files"  # manifest entry: every other file of the artifact -> its SHA-256
HASH_KEYS = ("model_sha256", FILES_KEY)  # the manifest entries the record inside model.npz cannot hold
ENV_VAR = "CRAMPDX_MODEL"
_LIBRARIES = ("scikit-learn", "shap", "numpy", "pandas")
# What a model directory may hold besides the files its manifest lists: what artifacts
# written before the manifest listed its files hold, plus desktop clutter nobody misses.
_ARTIFACT_FILES = (MODEL_FILE, LEGACY_MODEL_FILE, MANIFEST_FILE, "model_card.md", "confusion_matrix.png", "calibration.png")
_CLUTTER = (".DS_Store", "Thumbs.db", "desktop.ini")
_TARGET_FIX = "choose an empty or new directory, or an existing crampdx model directory"


class ArtifactError(RuntimeError, UserFacingError):
    """A model artifact is missing, damaged or does not match this installation."""


def builtin_artifact_dir() -> Path:
    """The per-user default model directory, e.g. ``~/.local/share/crampdx/models/default``."""
    return Path(platformdirs.user_data_dir("crampdx", appauthor=False)) / "models" / "default"


def default_artifact_dir() -> Path:
    """``$CRAMPDX_MODEL`` if set, else :func:`builtin_artifact_dir`.

    Examples
    --------
    >>> import os
    >>> os.environ["CRAMPDX_MODEL"] = "/srv/crampdx/model"
    >>> str(default_artifact_dir())
    '/srv/crampdx/model'
    >>> del os.environ["CRAMPDX_MODEL"]
    >>> default_artifact_dir() == builtin_artifact_dir()
    True
    """
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else builtin_artifact_dir()


def _same_path(a: str | Path, b: str | Path) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def retrain_command(directory: str | Path) -> str:
    """The command that (re)trains the model at ``directory``.

    Plain ``crampdx train`` only for the built-in default location with ``$CRAMPDX_MODEL``
    unset; any other directory (``--model``, ``$CRAMPDX_MODEL``) gets ``--out DIR`` so the
    advice rebuilds the model that was asked for, whatever the environment of the shell.
    """
    builtin = builtin_artifact_dir()
    if _same_path(directory, builtin) and _same_path(default_artifact_dir(), builtin):
        return "crampdx train"
    return f"crampdx train --out {shlex.quote(str(directory))}"


def retrain_advice(directory: str | Path) -> str:
    return f"run `{retrain_command(directory)}` to train a model with the libraries installed now"


def _listed_files(directory: Path) -> set[str]:
    """The files an existing artifact's manifest says it was written with (none if unreadable)."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        files = manifest.get(FILES_KEY, []) if isinstance(manifest, dict) else []
        return {name for name in files if isinstance(name, str)}
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return set()


def _is_artifact_file(name: str, listed: set[str]) -> bool:
    return name in listed or name in _ARTIFACT_FILES or name in _CLUTTER


def check_artifact_target(directory: str | Path) -> Path:
    """Refuse a destination whose contents writing a model there would destroy.

    Writing an artifact replaces whatever is at ``directory``. That is allowed only if it
    does not exist (its parent folders are created), is an empty directory, or is an existing
    crampdx model directory (holding ``manifest.json`` or a model file, even damaged,
    and nothing but the files a model is written with). Call it before training, so a wrong
    ``--out`` fails at once; :func:`write_artifact` checks again before it replaces anything.

    Parameters
    ----------
    directory : path
        The intended artifact directory. A symbolic link is followed: the model is written
        where it points and the link is kept.

    Returns
    -------
    pathlib.Path
        The directory the artifact will be written to (``directory`` with links resolved).

    Raises
    ------
    ArtifactError
        One sentence naming the path and the fix: it is a file, a directory holding other
        files, below a file, or in a folder that cannot be written.
    """
    given = Path(directory)
    try:
        target = given.resolve() if given.is_symlink() else given
    except (OSError, RuntimeError):  # a loop of links
        raise ArtifactError(f"Cannot write the model to {given}: it is a symbolic link that leads nowhere; {_TARGET_FIX}.") from None
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ArtifactError(f"Cannot write the model to {given}: it is an existing file, not a model directory (left "
                                f"untouched); {_TARGET_FIX}.")
        try:
            entries = [entry.name for entry in os.scandir(target)]
        except OSError as error:
            raise ArtifactError(f"Cannot write the model to {given}: the directory cannot be read ({error.strerror or error}); "
                                f"{_TARGET_FIX}.") from None
        if entries:
            if not {MANIFEST_FILE, MODEL_FILE, LEGACY_MODEL_FILE} & set(entries):
                shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
                raise ArtifactError(f"Cannot write the model to {given}: it is a directory of other files ({shown}), not a "
                                    f"crampdx model, and was left untouched; {_TARGET_FIX}.")
            listed = _listed_files(target)
            foreign = sorted(name for name in entries if not _is_artifact_file(name, listed))
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise ArtifactError(f"Cannot write the model to {given}: the model directory also holds other files ({shown}), "
                                    f"which replacing it would delete; move them elsewhere, or {_TARGET_FIX}.")
        parent = target.parent
    else:
        parent = target.parent
        while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise ArtifactError(f"Cannot write the model to {given}: {parent} is a file, not a folder; {_TARGET_FIX}.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ArtifactError(f"Cannot write the model to {given}: no permission to write in {parent}; {_TARGET_FIX} "
                            "in a folder you can write to.")
    return target


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model's file and outputs depend on."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[name] = "not installed"
    return versions


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
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
        Destination directory: new, empty, or an existing artifact, which is replaced only
        once the new one is complete (see :func:`check_artifact_target`). Staging
        directories that killed runs left beside it are removed.
    estimator : sklearn.ensemble.HistGradientBoostingClassifier
        The fitted multi-class model, saved as plain arrays.
    manifest : mapping
        Everything the manifest should say besides what this function adds (format
        version, creation time, library versions, the files' hashes); JSON-ready. It is
        saved inside ``model.npz`` as well, so the model file's hash covers it.
    extra_files : callable, optional
        Called with the staging directory to add files (model card, plots) before the
        artifact is moved into place; the manifest records their hashes too.

    Returns
    -------
    pathlib.Path
        The destination directory.

    Raises
    ------
    ArtifactError
        If ``directory`` holds anything but an earlier artifact (nothing is written), or
        cannot be created.
    """
    given = Path(directory)
    directory = check_artifact_target(given)
    record = {
        "format_version": ARTIFACT_FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_file": MODEL_FILE,
        "versions": library_versions(),
        **manifest,
    }
    content = model_file_bytes(estimator, record)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        with staging_beside(directory) as staging:
            os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the model from other users
            (staging / MODEL_FILE).write_bytes(content)
            if extra_files is not None:
                extra_files(staging)
            files = {entry.name: sha256_of(entry) for entry in sorted(staging.iterdir())}
            full = {**record, "model_sha256": files[MODEL_FILE], FILES_KEY: files}
            (staging / MANIFEST_FILE).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            check_artifact_target(given)  # again: something may have appeared while this was written
            swap_into_place(staging, directory)
    except OSError as error:
        raise ArtifactError(f"Cannot write the model to {given} ({error.strerror or error}); {_TARGET_FIX} "
                            "in a folder you can write to.") from None
    return given
