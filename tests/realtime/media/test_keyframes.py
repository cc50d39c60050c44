"""The relay's keyframe logic with a fake clock: rate limit without losing the last request, gates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from realtime.media.keyframes import KeyframeGate, KeyframeRequests, is_vp8_keyframe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_vp8_frame_tag_tells_keyframes() -> None:
    assert is_vp8_keyframe(bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]))  # P bit 0: key frame
    assert not is_vp8_keyframe(bytes([0x11, 0x02, 0x00]))  # P bit 1: inter frame
    assert not is_vp8_keyframe(b"\x00")  # too short to be a frame


def test_first_request_goes_at_once_and_a_burst_is_coalesced_into_one_deferred() -> None:
    clock = Clock()
    requests = KeyframeRequests(clock, min_interval_s=1.0)
    assert requests.request() == 0.0
    clock.now += 0.25
    assert requests.request() == 0.75  # deferred to the end of the interval
    clock.now += 0.25
    assert requests.request() is None  # already pending: coalesced
    assert requests.sent == 1 and requests.coalesced == 1
    clock.now += 0.5
    assert requests.due() is True
    assert requests.sent == 2
    assert requests.due() is False  # served once


def test_a_keyframe_that_arrives_anyway_cancels_the_deferred_request() -> None:
    clock = Clock()
    requests = KeyframeRequests(clock)
    requests.request()
    clock.now += 0.1
    requests.request()
    requests.keyframe_seen()
    clock.now += 1.0
    assert requests.due() is False
    assert requests.sent == 1


@given(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=60))
def test_never_more_than_one_request_per_interval(gaps: list[float]) -> None:
    clock = Clock()
    requests = KeyframeRequests(clock, min_interval_s=1.0)
    sent_at: list[float] = []
    deadline: float | None = None
    for gap in gaps:
        target = clock.now + gap
        if deadline is not None and deadline <= target:
            clock.now = deadline
            if requests.due():
                sent_at.append(clock.now)
            deadline = None
        clock.now = target
        delay = requests.request()
        if delay == 0.0:
            sent_at.append(clock.now)
        elif delay is not None:
            deadline = clock.now + delay
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(sent_at, sent_at[1:], strict=False))
    assert sent_at, "the first request is always sent"


def test_gate_holds_video_until_a_keyframe_and_again_after_a_reset() -> None:
    gate = KeyframeGate()
    assert [gate.admit(k) for k in (False, False, True, False)] == [False, False, True, True]
    gate.reset()
    assert gate.admit(False) is False
    assert gate.admit(True) is True
    assert gate.dropped == 3
