"""The project's own error for bad input: one clear line, shown to users without a traceback; and
``printable`` for text from outside (file names) on its way to a terminal."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage. ``str(err)`` is a one-line message that names the file and the problem."""


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes, newlines) written as Python escapes, so
    a crafted file name cannot drive the terminal or forge extra lines; other Unicode is kept."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
