"""Keyframe logic of the relay, free of I/O so that it can be tested with a fake clock.

- ``is_vp8_keyframe``: reads the VP8 frame tag (RFC 6386 §9.1) of a reassembled frame.
- ``KeyframeRequests``: subscribers' requests for one publisher, rate-limited; a request that comes
  too soon is not dropped but deferred to the end of the interval, so the last asker is always served.
- ``KeyframeGate``: a subscriber's video starts (and restarts after a source change) at a keyframe.
"""

from __future__ import annotations

from collections.abc import Callable

# At most one keyframe request per publisher this often: a keyframe costs several times a delta frame.
MIN_INTERVAL_S = 1.0


def is_vp8_keyframe(frame: bytes) -> bool:
    """True if ``frame`` (a whole VP8 frame, payload descriptors removed) is a keyframe."""
    return len(frame) >= 3 and frame[0] & 0x01 == 0


class KeyframeRequests:
    """Decides when a publisher is asked for a keyframe.

    Args:
        clock: monotonic seconds.
        min_interval_s: the shortest time between two requests sent.
    """

    def __init__(self, clock: Callable[[], float], min_interval_s: float = MIN_INTERVAL_S) -> None:
        self.clock = clock
        self.min_interval_s = min_interval_s
        self.last_sent: float | None = None
        self.pending = False
        self.sent = 0
        self.coalesced = 0

    def request(self) -> float | None:
        """Note a request. Returns 0 to send now, a delay in seconds to send later, or None (already due)."""
        now = self.clock()
        if self.last_sent is None or now - self.last_sent >= self.min_interval_s:
            self._mark_sent(now)
            return 0.0
        if self.pending:
            self.coalesced += 1
            return None
        self.pending = True
        return self.last_sent + self.min_interval_s - now

    def due(self) -> bool:
        """Called when a deferred request's delay is over: True to send it now."""
        if not self.pending:
            return False
        self._mark_sent(self.clock())
        return True

    def keyframe_seen(self) -> None:
        """A keyframe arrived from the publisher anyway: a deferred request is no longer needed."""
        self.pending = False

    def _mark_sent(self, now: float) -> None:
        self.last_sent = now
        self.pending = False
        self.sent += 1


class KeyframeGate:
    """Holds back a subscriber's video until a keyframe, so that the decoder never starts mid-picture."""

    def __init__(self) -> None:
        self.open = False
        self.dropped = 0

    def reset(self) -> None:
        """The source changed (or was never there): wait for the next keyframe."""
        self.open = False

    def admit(self, keyframe: bool) -> bool:
        """True if this frame may be sent."""
        if keyframe:
            self.open = True
        if not self.open:
            self.dropped += 1
        return self.open
