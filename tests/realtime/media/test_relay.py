"""The relay's subscriber slots without a network: queues, keyframe gates, timestamps across switches."""

from __future__ import annotations

import asyncio

import av

from realtime.media.relay import QUEUE_LIMIT, Publication, SubscriberTrack

KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A])
DELTA = bytes([0x11, 0x02, 0x00, 0x00])


def packet(data: bytes, pts: int) -> av.Packet:
    p = av.Packet(data)
    p.pts = pts
    return p


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


async def test_video_starts_at_a_keyframe_and_survives_an_overflow_on_a_keyframe() -> None:
    track = SubscriberTrack("video")
    track.push(packet(DELTA, 0))
    assert track.packets_dropped == 0 and not track._queue  # held back: no keyframe yet
    track.push(packet(KEY, 3000), keyframe=True)
    for i in range(QUEUE_LIMIT["video"] - 1):
        track.push(packet(DELTA, 6000 + 3000 * i))
    assert len(track._queue) == QUEUE_LIMIT["video"]
    # The queue is full when a keyframe arrives: it restarts at that keyframe and keeps going.
    track.push(packet(KEY, 999_000), keyframe=True)
    for i in range(5):
        track.push(packet(DELTA, 1_002_000 + 3000 * i))
    assert len(track._queue) == 6
    assert bytes(await track.recv()) == KEY


async def test_an_overflow_on_a_delta_frame_waits_for_the_next_keyframe_and_asks_for_one() -> None:
    asked: list[int] = []

    class Source(Publication):
        def request_keyframe(self) -> None:
            asked.append(1)

    track = SubscriberTrack("video")
    track.attach(Source(1, "video", track=None))  # type: ignore[arg-type]
    assert asked == [1]  # attaching asks for a keyframe
    track.push(packet(KEY, 0), keyframe=True)
    for i in range(QUEUE_LIMIT["video"]):
        track.push(packet(DELTA, 3000 * (i + 1)))
    assert asked == [1, 1] and not track._queue
    track.push(packet(DELTA, 999_000))
    assert not track._queue
    track.push(packet(KEY, 1_002_000), keyframe=True)
    assert len(track._queue) == 1


async def test_audio_drops_the_oldest_when_full() -> None:
    track = SubscriberTrack("audio")
    for i in range(QUEUE_LIMIT["audio"] + 3):
        track.push(packet(bytes([i]), 960 * i))
    assert track.packets_dropped == 3
    assert bytes(await track.recv()) == bytes([3])


async def test_timestamps_keep_running_forward_when_the_slot_switches_speakers() -> None:
    clock = Clock()
    track = SubscriberTrack("audio", clock=clock)
    first = Publication(1, "audio", track=None)  # type: ignore[arg-type]
    second = Publication(2, "audio", track=None)  # type: ignore[arg-type]
    track.attach(first)
    first.forward(packet(b"a", 480_000))
    assert (await track.recv()).pts == 480_000  # the first source passes through unchanged
    clock.now += 2.0
    track.attach(second)
    assert track not in first.sinks and track in second.sinks
    second.forward(packet(b"b", 960))  # the new speaker's clock starts near zero
    rebased = await track.recv()
    assert rebased.pts == 480_000 + 2 * 48_000  # continues from the old timeline by the time elapsed
    second.forward(packet(b"c", 1920))
    assert (await track.recv()).pts == 480_000 + 2 * 48_000 + 960


async def test_a_muted_publication_forwards_nothing() -> None:
    publication = Publication(1, "audio", track=None)  # type: ignore[arg-type]
    track = SubscriberTrack("audio")
    track.attach(publication)
    tapped: list[bytes] = []
    publication.taps.append(lambda p: tapped.append(bytes(p)))
    publication.muted = True
    publication.forward(packet(b"x", 0))
    assert not track._queue and tapped == [] and publication.packets_dropped_muted == 1
    publication.muted = False
    publication.forward(packet(b"y", 960))
    assert len(track._queue) == 1 and tapped == [b"y"]
    await asyncio.sleep(0)


async def test_the_tap_fills_lost_packets_with_silence_to_keep_the_timeline() -> None:
    from fractions import Fraction

    import numpy as np

    from realtime.media.tap import AudioTap

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    tone = (np.sin(np.arange(960) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
    packets = []
    for i in range(50):  # one second of 20 ms frames
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 960
        packets += list(encoder.encode(frame))
    tap = AudioTap(1)
    stream = tap.stream()
    for index, p in enumerate(packets):
        if 20 <= index < 30:
            continue  # 200 ms lost on the way
        p.pts = index * 960
        tap.feed(p)
    tap.close()
    chunks = [chunk async for chunk in stream]
    total_s = sum(c.duration_s for c in chunks)
    assert abs(total_s - len(packets) * 0.02) < 0.03
    assert abs(tap.filled_s - 0.2) < 0.021
