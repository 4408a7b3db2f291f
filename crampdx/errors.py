"""The marker of every error a user can cause and fix, and how such a message quotes input.

A bad case file, an impossible lab value, a missing or mismatched model, an output path
that cannot be written: each raises a subclass of :class:`UserFacingError` (and of the
built-in type it is, ``ValueError`` or ``RuntimeError``) whose message is one sentence
naming what is wrong and how to fix it. Front ends print that sentence, never a traceback.

A message that echoes something the user gave shows it through :func:`quote`, so that a
100 MB value or a 95 kB key cannot make a 100 MB message.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

__all__ = ["QUOTE_CHARS", "UserFacingError", "clip", "quote"]

QUOTE_CHARS = 80  # the most characters of any one user-given value a message shows
_EXACT_DIGITS = 4000  # below Python's int -> str limit (4300 digits), counted exactly


class UserFacingError(Exception):
    """An error the user can fix; its message is one sentence saying how."""


def _integer(value: int, limit: int) -> str:
    """An integer as a message shows it: in full when short, else by its number of digits
    (``str()`` of a 5,000-digit integer raises ValueError, ``math.log10`` does not)."""
    if value.bit_length() <= _EXACT_DIGITS * 3:  # 3 bits < 1 digit: at most 4,000 digits
        text = repr(value)
        digits = len(text.lstrip("-"))
        return text if len(text) <= limit else f"an integer of {digits:,} digits"
    return f"an integer of about {int(math.log10(abs(value))) + 1:,} digits"


class _Bounded(reprlib.Repr):
    """reprlib with integers that cannot raise and every part bounded."""

    def __init__(self, limit: int):
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong = 2, limit, limit, limit
        self.limit = limit

    def repr_int(self, value: int, level: int) -> str:
        return _integer(value, self.limit)


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """A user-given value as an error message shows it: its ``repr``, at most ``limit``
    characters of it, and the full length when it was cut.

    Parameters
    ----------
    value : any
        A key, cell or value from a case, a file or a form. Never raises, whatever it is
        (a 5,000-digit integer, a list nested 100,000 deep, an object whose repr fails).
    limit : int
        The most characters of the value shown (default :data:`QUOTE_CHARS`).

    Returns
    -------
    str

    Examples
    --------
    >>> quote("Agee")
    "'Agee'"
    >>> quote("x" * 100_000, limit=5)
    "'xxxxx…' (100,000 characters)"
    >>> quote(10 ** 400)
    'an integer of 401 digits'
    >>> quote([[[[1]]]])
    '[[[...]]]'
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit] + '…'!r} ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(value, limit)
    try:
        return clip(_Bounded(limit).repr(value), limit)
    except Exception:  # a foreign object whose repr fails: its type is all that is safe to show
        return f"a {type(value).__name__} value"


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis (for a library's own
    message, which may span lines or carry part of a file).

    Examples
    --------
    >>> clip("Expecting value: line 1 column 1", limit=15)
    'Expecting value…'
    >>> clip("Error tokenizing data. C error: Expected 1 fields in line 3, saw 2\\n")
    'Error tokenizing data. C error: Expected 1 fields in line 3, saw 2'
    """
    text = " ".join(text[:limit * 2].split())
    return text if len(text) <= limit else text[:limit] + "…"
