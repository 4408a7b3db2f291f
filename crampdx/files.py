"""Writing output files so that a failure never leaves half a file or damages the old one.

Shared by the command line (``--out``, ``--png``) and the artifact writer: everything is
written to a temporary file beside its destination and moved into place with
``os.replace``. Only regular files are written: a symbolic link, a FIFO, a device or a
socket at the path is refused (replacing it would destroy it, and writing through it is not
what ``--out`` means), checked before the work and again just before the rename.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable

from crampdx.errors import UserFacingError

__all__ = ["OutputPathError", "check_output_path", "current_umask", "write_atomically", "write_text_atomically"]


class OutputPathError(ValueError, UserFacingError):
    """An output path cannot be written; the message names the path and the fix."""


def current_umask() -> int:
    """The process's umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output_path(path: str | Path, option: str = "--out", example: str = "result.csv") -> Path:
    """Refuse, before any work is done, an output path that cannot be written as a file.

    Parameters
    ----------
    path : path
        The intended output file.
    option : str
        How the user gave the path (named in the message).
    example : str
        A file name to suggest when ``path`` is a directory.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputPathError
        ``path`` is a directory, a symbolic link, a FIFO, a device or a socket, or its
        folder does not exist or is a file.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> try:
    ...     check_output_path(folder)
    ... except OutputPathError as error:
    ...     print(str(error).replace(folder, "FOLDER"))
    --out FOLDER is a directory; give a file name, e.g. FOLDER/result.csv
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputPathError(f"{option} {path} is a symbolic link, which is never written through or replaced; give the "
                              f"path of a file instead ({_link_target(path)})")
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a directory; give a file name, e.g. {path / example}")
    _refuse_special_file(path, option)
    parent = path.parent
    if not parent.exists():
        raise OutputPathError(f"{option} {path}: the folder {parent} does not exist; create it or choose another path")
    if not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
    return path


_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _link_target(path: Path) -> str:
    try:
        return f"the link points to {path.resolve(strict=True)}"
    except (OSError, RuntimeError):
        return "the link leads nowhere"


def _refuse_special_file(path: Path, option: str) -> None:
    """Refuse anything at ``path`` that is not a regular file (a missing path is fine)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        raise OutputPathError(f"{option} {path}: cannot be examined ({error.strerror or error}); choose another path") from None
    if stat.S_ISLNK(mode):
        raise OutputPathError(f"{option} {path} became a symbolic link while the output was written; it was left as it is, "
                              "choose another path")
    for test, what in _SPECIAL:
        if test(mode):
            raise OutputPathError(f"{option} {path} is {what}, not a regular file; it was left as it is, choose a file path")


def write_atomically(out: str | Path, write: Callable[[str], None], option: str = "--out",
                     example: str = "result.csv") -> Path:
    """Write through ``write(temporary_path)`` beside ``out``, then rename it to ``out``.

    An interrupted or failed write never leaves half a file and never damages what was
    there before; an existing file keeps its permissions, a new one gets the umask's. Only a
    regular file (or nothing) at ``out`` is replaced.

    Raises
    ------
    OutputPathError
        The path cannot be written, or is not a regular file (one sentence naming it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> _ = write_atomically(target, lambda tmp: pathlib.Path(tmp).write_text("hello"))
    >>> target.read_text()
    'hello'
    """
    out = check_output_path(out, option, example)
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=f".tmp{out.suffix}")
        os.close(handle)
        write(tmp)
        _refuse_special_file(out, option)  # again: something may have appeared while this was written
        if out.exists():
            shutil.copymode(out, tmp)
        else:  # mkstemp makes the file private; give it the permissions a new file would get
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, out)
    except OSError as error:
        raise OutputPathError(f"{option} {out}: could not be written ({error.strerror or error}); "
                              "choose another path") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return out


def write_text_atomically(text: str, out: str | Path, option: str = "--out", *, example: str = "report.json") -> Path:
    """:func:`write_atomically` for a text (UTF-8)."""
    return write_atomically(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), option, example)
