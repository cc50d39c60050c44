"""The pass-through relay: a publisher's encoded packets go to every subscriber as they are.

- ``Publication``: one published track (a speaker's microphone or camera). One task reads its encoded
  packets once and hands each to every attached ``SubscriberTrack`` and to the taps (captioning, levels).
  A muted publication drops its packets here, on the server, whatever the client does.
- ``SubscriberTrack``: what one subscriber's ``RTCRtpSender`` sends. Its source can be switched from one
  publication to another without renegotiation; timestamps are rebased so that they keep running
  forward, and video restarts at a keyframe.

Requires ``hooks.install()`` (remote tracks yield ``av.Packet``s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from realtime.media import hooks
from realtime.media.keyframes import KeyframeGate, KeyframeRequests, is_vp8_keyframe

log = logging.getLogger("forumlive.media")

CLOCK_RATE = {"audio": 48000, "video": 90000}
# Packets a subscriber may have queued before the oldest are dropped (audio) or the queue restarts at a
# keyframe (video): about 1 s of audio, 2 s of 30 fps video.
QUEUE_LIMIT = {"audio": 50, "video": 60}

Tap = Callable[[av.Packet], None]


class Publication:
    """One published track, read once and fanned out.

    Args:
        owner: the publishing person's id.
        kind: ``audio`` or ``video``.
        track: aiortc's remote track (yields ``av.Packet`` with the hooks installed).
        receiver: where keyframe requests go (video); None in tests.
    """

    def __init__(
        self,
        owner: int,
        kind: str,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver | None = None,
        clock: Callable[[], float] = time.monotonic,
        send_pli: Callable[[RTCRtpReceiver], Awaitable[bool]] = hooks.request_keyframe,
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.track = track
        self.receiver = receiver
        self.muted = False
        self.sinks: set[SubscriberTrack] = set()
        self.taps: list[Tap] = []
        self.keyframes = KeyframeRequests(clock)
        self.packets_in = 0
        self.packets_dropped_muted = 0
        self.ended = asyncio.Event()
        self._send_pli = send_pli
        self._task: asyncio.Task[None] | None = None
        self._deferred: asyncio.TimerHandle | None = None
        self._requests: set[asyncio.Task[bool]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=f"publication-{self.owner}-{self.kind}")

    async def stop(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._finish()

    def _finish(self) -> None:
        for sink in list(self.sinks):
            sink.detach()
        self.ended.set()

    async def _pump(self) -> None:
        try:
            while True:
                try:
                    packet = await self.track.recv()
                except MediaStreamError:
                    return
                self.forward(packet)
        finally:
            self._finish()

    def forward(self, packet: av.Packet) -> None:
        """Hand one encoded packet to every subscriber and tap (dropped while muted)."""
        self.packets_in += 1
        if self.muted:
            self.packets_dropped_muted += 1
            return
        keyframe = self.kind == "video" and is_vp8_keyframe(memoryview(packet)[:3].tobytes())
        if keyframe:
            self.keyframes.keyframe_seen()
        for sink in list(self.sinks):
            sink.push(packet, keyframe)
        for tap in self.taps:
            try:
                tap(packet)
            except Exception:
                log.exception("media tap of person %s failed; removed", self.owner)
                self.taps.remove(tap)

    def request_keyframe(self) -> None:
        """A subscriber needs a keyframe: ask the publisher now, or at the end of the rate-limit interval."""
        if self.kind != "video":
            return
        delay = self.keyframes.request()
        if delay == 0:
            self._send_now()
        elif delay is not None:
            self._deferred = asyncio.get_running_loop().call_later(delay, self._send_deferred)

    def _send_deferred(self) -> None:
        self._deferred = None
        if self.keyframes.due():
            self._send_now()

    def _send_now(self) -> None:
        if self.receiver is not None:
            task = asyncio.create_task(self._send_pli(self.receiver))
            self._requests.add(task)  # a task nobody refers to may be collected before it runs
            task.add_done_callback(self._requests.discard)


class SubscriberTrack(MediaStreamTrack):
    """The track behind one subscriber's sender: packets from whichever publication it is attached to."""

    def __init__(self, kind: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.kind = kind
        self.source: Publication | None = None
        self.gate = KeyframeGate()
        self.packets_out = 0
        self.packets_dropped = 0
        self._clock = clock
        self._queue: deque[av.Packet] = deque()
        self._ready = asyncio.Event()
        self._time_base = Fraction(1, CLOCK_RATE[kind])
        self._offset = 0  # added to the source's pts so that timestamps keep running forward
        self._last_pts: int | None = None
        self._last_at = 0.0
        self._rebase_next = False

    # The source -------------------------------------------------------------------------------------

    def attach(self, publication: Publication) -> None:
        if self.source is publication:
            return
        self.detach()
        self.source = publication
        publication.sinks.add(self)
        self._rebase_next = self._last_pts is not None
        if self.kind == "video":
            self.gate.reset()
            publication.request_keyframe()  # a new subscriber starts at a keyframe

    def detach(self) -> None:
        if self.source is not None:
            self.source.sinks.discard(self)
            self.source = None
        self._queue.clear()

    def request_keyframe(self) -> None:
        """Called by the sender (hooks) when the subscriber's browser sends a PLI or FIR."""
        if self.source is not None:
            self.source.request_keyframe()

    # Packets ----------------------------------------------------------------------------------------

    def push(self, packet: av.Packet, keyframe: bool = False) -> None:
        if self.readyState != "live":
            return
        if len(self._queue) >= QUEUE_LIMIT[self.kind]:
            self.packets_dropped += len(self._queue) if self.kind == "video" else 1
            if self.kind == "video":  # a gap breaks every later delta frame: restart at a keyframe
                self._queue.clear()
                self.gate.reset()
                if not keyframe:
                    self.request_keyframe()
            else:
                self._queue.popleft()
        if self.kind == "video" and not self.gate.admit(keyframe):
            return
        self._queue.append(self._rebase(packet))
        self._ready.set()

    def _rebase(self, packet: av.Packet) -> av.Packet:
        pts = packet.pts or 0
        now = self._clock()
        if self._rebase_next and self._last_pts is not None:
            elapsed = max(round((now - self._last_at) * CLOCK_RATE[self.kind]), 1)
            self._offset = self._last_pts + elapsed - pts
            self._rebase_next = False
        out_pts = pts + self._offset
        self._last_pts, self._last_at = out_pts, now
        if self._offset == 0:
            return packet  # shared with other subscribers: never modified
        rebased = av.Packet(bytes(packet))
        rebased.pts = out_pts
        rebased.time_base = self._time_base
        return rebased

    async def recv(self) -> av.Packet:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.packets_out += 1
        return self._queue.popleft()

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._ready.set()
