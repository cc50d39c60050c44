"""Token buckets: bursts, refill, and the higher chat rate of moderators."""

from __future__ import annotations

from realtime.limits import ConnectionLimits, Rate, TokenBucket


def test_bucket_allows_a_burst_then_refills() -> None:
    """After the burst the wait is the refill time; time refills tokens up to the burst."""
    now = [0.0]
    bucket = TokenBucket(Rate(burst=2, per_s=1.0), clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    assert bucket.take() == 1.0
    now[0] = 0.5
    assert bucket.take() == 0.5
    now[0] = 10.0
    assert bucket.take() == 0 and bucket.take() == 0 and bucket.take() > 0


def test_each_kind_has_its_own_bucket_and_staff_chat_faster() -> None:
    """Chat floods do not block votes; moderators may post 20 lines at once, participants 5."""
    now = [0.0]
    participant = ConnectionLimits(clock=lambda: now[0])
    assert [participant.take("chat.send") for _ in range(6)].count(0) == 5
    assert participant.take("question.vote") == 0
    moderator = ConnectionLimits(staff=True, clock=lambda: now[0])
    assert [moderator.take("chat.send") for _ in range(21)].count(0) == 20
