"""The media tap: a speaker's Opus decoded once into mono 16 kHz PCM, for captioning and audio levels.

``AudioTap.feed`` is attached to an audio ``Publication`` and decodes each packet once, however many
people listen. Consumers read ``AudioTap.stream()``: an async iterator of ``PcmChunk`` (int16 samples
with the media time of their first sample). A consumer that falls behind loses its oldest chunks,
never the others' and never the relay's. The level of the last 20 ms frames is kept for the
active-speaker highlight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import av
import numpy as np

log = logging.getLogger("forumlive.media")

SAMPLE_RATE = 16000
# Chunks a consumer may have waiting before its oldest are dropped: 50 × 20 ms = 10 s.
CONSUMER_QUEUE = 500
# Levels are shown from this floor (silence) to 0 dBFS.
LEVEL_FLOOR_DB = -60.0
# Gaps in the RTP timestamps longer than this are filled with silence, up to the maximum (longer gaps,
# e.g. a long mute, are not worth megabytes of zeros: the stream simply goes on).
MIN_GAP_S = 0.015
MAX_GAP_FILL_S = 10.0
# A level older than this is no level: the speaker went quiet on the wire.
LEVEL_STALE_S = 0.3


@dataclass(frozen=True)
class PcmChunk:
    """Mono 16 kHz samples: ``start_s`` is the media time of the first one (from the RTP timestamps),
    ``received_at`` the wall-clock time the packet arrived."""

    samples: np.ndarray  # int16
    start_s: float
    received_at: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def level_of(samples: np.ndarray) -> float:
    """0.0 (silence, at or under -60 dBFS) to 1.0 (full scale) from int16 samples, on a dB scale."""
    if samples.size == 0:
        return 0.0
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float32) / 32768.0))))
    if rms <= 0.0:
        return 0.0
    db = 20.0 * math.log10(rms)
    return max(0.0, min(1.0, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB))


class AudioTap:
    """Decodes one speaker's Opus packets into mono 16 kHz PCM for any number of consumers."""

    def __init__(self, person_id: int) -> None:
        self.person_id = person_id
        self._level = 0.0
        self._fed_at = 0.0
        self.decoded_s = 0.0
        self.errors = 0
        self.filled_s = 0.0  # silence put in for packets that never came
        self._next_s: float | None = None  # media time right after the last decoded frame
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.format = "s16"
        self._decoder.layout = "stereo"
        self._decoder.sample_rate = 48000
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._consumers: list[asyncio.Queue[PcmChunk | None]] = []
        self._closed = False

    @property
    def level(self) -> float:
        """The recent level; 0 when nothing arrived for a while (muted, or the browser stopped sending)."""
        return self._level if time.monotonic() - self._fed_at < LEVEL_STALE_S else 0.0

    def feed(self, packet: av.Packet) -> None:
        """Decode one encoded Opus packet (pts in 1/48000 s) and hand the PCM to the consumers.

        Packets that never arrived (lost, or the browser paused sending) leave a gap in the RTP
        timestamps; it is filled with silence (up to ``MAX_GAP_FILL_S``) so that the PCM keeps the
        speaker's timeline: captions and recordings stay in step with what was said.
        """
        start_s = float(packet.pts or 0) / 48000
        try:
            frames = self._decoder.decode(av.Packet(bytes(packet)))
        except av.FFmpegError:
            self.errors += 1
            return
        arrived = time.time()
        if self._next_s is not None and self._consumers:
            gap_s = start_s - self._next_s
            if MIN_GAP_S < gap_s <= MAX_GAP_FILL_S:
                self.filled_s += gap_s
                self._deliver(PcmChunk(np.zeros(round(gap_s * SAMPLE_RATE), np.int16), self._next_s, arrived))
        for frame in frames:
            self._next_s = start_s + frame.samples / frame.sample_rate
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)] or [_EMPTY])
            if pcm.size == 0:
                continue
            self._level = 0.7 * self._level + 0.3 * level_of(pcm)
            self._fed_at = time.monotonic()
            self.decoded_s += pcm.size / SAMPLE_RATE
            if self._consumers:
                self._deliver(PcmChunk(pcm.astype(np.int16, copy=False), start_s, arrived))

    def _deliver(self, chunk: PcmChunk | None) -> None:
        for queue in self._consumers:
            if chunk is not None and queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(chunk)

    def close(self) -> None:
        """The speaker stopped publishing: every stream ends after the chunks already queued."""
        if not self._closed:
            self._closed = True
            self._level = 0.0
            for queue in self._consumers:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)

    def stream(self) -> AsyncIterator[PcmChunk]:
        """The PCM from now until the speaker stops (or the consumer stops iterating); registered at once."""
        queue: asyncio.Queue[PcmChunk | None] = asyncio.Queue(CONSUMER_QUEUE)
        if self._closed:
            queue.put_nowait(None)
        else:
            self._consumers.append(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[PcmChunk | None]) -> AsyncIterator[PcmChunk]:
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
        finally:
            if queue in self._consumers:
                self._consumers.remove(queue)


_EMPTY = np.zeros(0, dtype=np.int16)
