"""Token buckets for per-connection rate limits (chat, questions, votes, typed captions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """``burst`` actions at once, refilled at ``per_s`` seconds per action."""

    burst: int
    per_s: float


# Chosen for people typing, not scripts: a burst of 5 chat lines then one every 2 s; questions are
# rarer; votes may come in quick succession while someone scrolls the Q&A.
RATES: dict[str, Rate] = {
    "chat": Rate(burst=5, per_s=2.0),
    "question": Rate(burst=3, per_s=20.0),
    "vote": Rate(burst=20, per_s=0.5),
    "other": Rate(burst=20, per_s=0.2),
    # WebRTC signaling: an offer comes with a burst of trickled ICE candidates.
    "signal": Rate(burst=40, per_s=0.1),
    # A captioner's page sends the line being typed at most every 0.5 s, and each finished line.
    "caption": Rate(burst=10, per_s=0.2),
}

# Moderators post announcements and run the room: a higher chat rate (slow mode exempts them too).
STAFF_RATES: dict[str, Rate] = {**RATES, "chat": Rate(burst=20, per_s=0.1)}

BUCKET_OF: dict[str, str] = {
    "chat.send": "chat",
    "question.ask": "question",
    "question.vote": "vote",
    "question.unvote": "vote",
    "poll.vote": "vote",
    "media.publish": "signal",
    "media.unpublish": "signal",
    "media.subscribe": "signal",
    "media.answer": "signal",
    "media.ice": "signal",
    "media.prefs": "signal",
    "caption.type": "caption",
    # Café tables: their chat and their note cards count as chat.
    "cafe.chat": "chat",
    "cafe.note.add": "chat",
    "cafe.note.edit": "chat",
}


class TokenBucket:
    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = float(rate.burst)
        self._at = clock()

    def take(self) -> float:
        """Take a token: returns 0 when allowed, else the seconds to wait for the next token."""
        now = self._clock()
        self._tokens = min(self.rate.burst, self._tokens + (now - self._at) / self.rate.per_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) * self.rate.per_s


class ConnectionLimits:
    """The buckets of one connection, one per kind of action."""

    def __init__(self, staff: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        rates = STAFF_RATES if staff else RATES
        self._buckets = {name: TokenBucket(rate, clock) for name, rate in rates.items()}

    def take(self, message_type: str) -> float:
        return self._buckets[BUCKET_OF.get(message_type, "other")].take()
