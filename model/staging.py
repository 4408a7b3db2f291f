"""Replacing a directory atomically: build it in a staging directory beside it, then swap.

A run killed while it writes leaves its ``.NAME.staging-*`` (or, between the two renames of
a swap, ``.NAME.retired-*``) behind. Writers take an exclusive lock on the parent folder for
as long as they write (``flock``, released by the kernel when a process dies), so whoever
holds it knows every staging directory there is a leftover of a run that is gone, and
removes it. Where ``flock`` is missing (Windows) nothing is locked and leftovers stay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["LOCK_TIMEOUT", "StagingBusyError", "staging_beside", "swap_into_place"]

LOCK_TIMEOUT = 120.0  # seconds to wait for another run's save step (seconds long) to finish


class StagingBusyError(OSError):
    """Another process has been writing beside the destination for longer than LOCK_TIMEOUT."""


@contextlib.contextmanager
def _parent_locked(parent: Path, timeout: float) -> Iterator[bool]:
    """Hold an exclusive lock on ``parent``; yields whether locking is available."""
    if fcntl is None:  # pragma: no cover - Windows
        yield False
        return
    handle = os.open(parent, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StagingBusyError(f"another process has been writing in {parent} for over {timeout:.0f} s") from None
                time.sleep(0.1)
        yield True
    finally:
        os.close(handle)  # releases the lock


def _remove_leftovers(directory: Path) -> None:
    """Remove staging directories of runs that are gone, and retired copies of an earlier
    artifact once a complete one is in place (never the only copy of a model)."""
    patterns = [f".{directory.name}.staging-*"]
    if directory.exists():
        patterns.append(f".{directory.name}.retired-*")
    for pattern in patterns:
        for leftover in directory.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def staging_beside(directory: Path, *, timeout: float = LOCK_TIMEOUT) -> Iterator[Path]:
    """A new, empty staging directory beside ``directory`` (whose parent must exist), with
    the parent locked and earlier runs' leftovers removed; the staging directory is removed
    on the way out unless it was swapped into place.

    Raises
    ------
    OSError
        The parent cannot be opened or written; StagingBusyError if another writer holds it.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> parent = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (parent / ".model.staging-of-a-killed-run").mkdir()
    >>> with staging_beside(parent / "model") as staging:
    ...     _ = (staging / "model.npz").write_bytes(b"arrays")
    ...     swap_into_place(staging, parent / "model")
    >>> sorted(p.name for p in parent.rglob("*"))
    ['model', 'model.npz']
    """
    with _parent_locked(directory.parent, timeout) as locked:
        if locked:
            _remove_leftovers(directory)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.staging-"))
        try:
            yield staging
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def swap_into_place(staging: Path, directory: Path) -> None:
    """Move ``staging`` to ``directory``; the old directory stays until the new one is there.

    Whatever is at ``directory`` is deleted: callers check first what it holds (see
    :func:`staging_beside` for an example).
    """
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
