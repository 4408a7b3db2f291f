"""The marker of every error a user can cause and fix.

A bad case file, an impossible lab value, a missing or mismatched model, an output path
that cannot be written: each raises a subclass of :class:`UserFacingError` (and of the
built-in type it is, ``ValueError`` or ``RuntimeError``) whose message is one sentence
naming what is wrong and how to fix it. Front ends print that sentence, never a traceback.
"""

__all__ = ["UserFacingError"]


class UserFacingError(Exception):
    """An error the user can fix; its message is one sentence saying how."""
