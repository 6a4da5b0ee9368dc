"""The app's password check, slowed after failures: each wrong password doubles the wait before
the next attempt is judged (1 s after the first, up to 30 s), for the whole server, so guessing
from many sessions at once gains nothing. A right password resets the count."""

from __future__ import annotations

import hmac
import threading
import time

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0


class PasswordGate:
    """Judges password attempts one at a time, each after the delay the failures so far earn."""

    def __init__(self, password: str, sleep=time.sleep):
        self._password = password.encode()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.failures = 0

    def delay(self) -> float:
        """Seconds the next attempt waits (0 before any failure)."""
        return 0.0 if self.failures == 0 else min(FIRST_DELAY_S * 2 ** (self.failures - 1), MAX_DELAY_S)

    def attempt(self, given: str) -> bool:
        """True when ``given`` is the password; waits :meth:`delay` first, attempts queue behind it."""
        with self._lock:
            self._sleep(self.delay())
            ok = hmac.compare_digest(given.encode(), self._password)
            self.failures = 0 if ok else self.failures + 1
            return ok
