"""The command line's own error type."""

from crampdx.errors import UserFacingError


class UserError(UserFacingError):
    """An error the user can fix; its message is printed as is (one sentence, no traceback)."""
