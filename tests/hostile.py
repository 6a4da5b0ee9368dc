"""Hostile payloads for safety tests."""

from __future__ import annotations

import os


class CodeRunningPickle:
    """Unpickling this runs ``touch MARKER``: a loader that admits it has run foreign code."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
