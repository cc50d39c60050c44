"""Attempt limits, such as failed sign-ins per account and address (slows password guessing).

A sliding window per key, in memory. One instance lives on ``app.state``; with several server
processes each keeps its own window, which still bounds guessing per process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

from server.errors import TooManyRequests

# Sign-in: at most 10 failures per account and address in 15 minutes.
SIGNIN_FAILURES = 10
SIGNIN_WINDOW_S = 15 * 60
MAX_KEYS = 100_000


class AttemptLimiter:
    """Counts failures per key in a sliding window and refuses further attempts past the limit."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def check(self, key: Hashable) -> None:
        """Raise ``TooManyRequests`` if the key has used up its failures."""
        with self._lock:
            now = self._clock()
            failures = self._recent(key, now)
            if len(failures) >= self.limit:
                retry = max(1, math.ceil(failures[0] + self.window_s - now))
                raise TooManyRequests(f"too many failed attempts; try again in {retry} s", retry)

    def failed(self, key: Hashable) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._failures.clear()  # bounded memory under a flood of distinct keys
            self._failures.setdefault(key, deque()).append(self._clock())

    def succeeded(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)
