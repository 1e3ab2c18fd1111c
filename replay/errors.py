"""The one exception replay raises for bad input, shown by the CLI as a single line with exit code 2."""

from __future__ import annotations

from core.errors import UserError


class ReplayError(UserError):
    """Bad input named in one line (a missing event id, an unreadable file, a wrong bucket); exit 2, no traceback."""
