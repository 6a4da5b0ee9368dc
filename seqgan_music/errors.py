"""The project's own error for bad input: one clear line, shown to users without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage. ``str(err)`` is a one-line message that names the file and the problem."""
