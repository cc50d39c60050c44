"""Attempt limits, such as failed sign-ins per account and address (slows password guessing).

A sliding window per key. One instance lives on ``app.state``: ``AttemptLimiter`` in memory (one
process), or ``RedisAttemptLimiter`` when processes share Redis, so that the limit holds whichever
process a guesser reaches (while Redis is unreachable it falls back to a window of its own process).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.errors import TooManyRequests

log = logging.getLogger("forumlive.ratelimit")

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

    async def check(self, key: Hashable) -> None:
        """Raise ``TooManyRequests`` if the key has used up its failures."""
        with self._lock:
            now = self._clock()
            failures = self._recent(key, now)
            if len(failures) >= self.limit:
                retry = max(1, math.ceil(failures[0] + self.window_s - now))
                raise TooManyRequests(f"too many failed attempts; try again in {retry} s", retry)

    async def failed(self, key: Hashable) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._failures.clear()  # bounded memory under a flood of distinct keys
            self._failures.setdefault(key, deque()).append(self._clock())

    async def succeeded(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    async def close(self) -> None:
        """Nothing to release (kept so that callers need not know which limiter they hold)."""


class RedisAttemptLimiter:
    """The same window shared by every process through Redis: a sorted set of failure times per key.

    Keys are stored hashed (an address and an email are personal data). While Redis is unreachable the
    limiter counts in this process only, as ``AttemptLimiter`` does.
    """

    def __init__(self, url: str, limit: int, window_s: float, prefix: str = "forumlive:attempts:") -> None:
        self.limit = limit
        self.window_s = window_s
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._local = AttemptLimiter(limit, window_s)

    def _key(self, key: Hashable) -> str:
        return self.prefix + hashlib.sha256(repr(key).encode()).hexdigest()

    async def check(self, key: Hashable) -> None:
        """Raise ``TooManyRequests`` if the key has used up its failures (in any process)."""
        now = time.time()
        name = self._key(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(name, "-inf", now - self.window_s)
                pipe.zcard(name)
                pipe.zrange(name, 0, 0, withscores=True)
                _, count, oldest = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("sign-in limits counted in this process only (Redis: %s)", exc)
            await self._local.check(key)
            return
        if count >= self.limit:
            retry = max(1, math.ceil(oldest[0][1] + self.window_s - now)) if oldest else 1
            raise TooManyRequests(f"too many failed attempts; try again in {retry} s", retry)

    async def failed(self, key: Hashable) -> None:
        name = self._key(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(name, {secrets.token_hex(8): time.time()})
                pipe.pexpire(name, int(self.window_s * 1000))
                await pipe.execute()
        except (RedisError, OSError):
            await self._local.failed(key)

    async def succeeded(self, key: Hashable) -> None:
        await self._local.succeeded(key)
        try:
            await self._redis.delete(self._key(key))
        except (RedisError, OSError):
            pass

    async def close(self) -> None:
        await self._redis.aclose()
