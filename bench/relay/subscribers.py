"""Subscribers: many aiortc peers in one process, each counting the frames and bytes it receives.

    python bench/relay/subscribers.py --port PORT

The hooks are installed here too, so that a subscriber's track yields each reassembled frame as it
arrived (an ``av.Packet``) instead of decoding it: the clients count frames, which keeps their CPU for
receiving. A frame is one Opus packet (20 ms) or one VP8 picture (several RTP packets).

Commands on stdin (see ``wire.serve_commands``):

- ``{"cmd": "add", "count": k}``: connect k more subscribers; reply when each has received a frame (or
  failed): ``{"subscribers": n, "failed": f, "connect_s": t}``.
- ``{"cmd": "stats"}``: ``{"frames": [...], "bytes": [...]}``, one entry per subscriber, counted so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.relay import wire  # noqa: E402
from realtime.media import hooks  # noqa: E402

CONNECTING_AT_ONCE = 8  # DTLS handshakes are CPU work on both sides; a few at a time keep the others flowing
CONNECT_TIMEOUT_S = 30.0
FIRST_FRAME_TIMEOUT_S = 30.0


class Subscriber:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = 0
        self.bytes = 0
        self.first = asyncio.Event()
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.task = asyncio.create_task(self._count(track))

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                packet = await track.recv()
                self.frames += 1
                self.bytes += packet.size
                self.first.set()

    async def connect(self, port: int) -> None:
        """Signal and wait until ICE and DTLS are done (the first frame may take a keyframe longer)."""
        offer = await wire.request(port, {"op": "subscribe"})
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await wire.request(port, {"op": "answer", "id": offer["id"], "sdp": self.pc.localDescription.sdp})
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await self.connected.wait()


class Crowd:
    def __init__(self, port: int) -> None:
        self.port = port
        self.subscribers: list[Subscriber] = []
        self.failed = 0
        self._gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def add(self, count: int) -> dict[str, Any]:
        started = time.monotonic()
        await asyncio.gather(*(self._one() for _ in range(count)))
        return {"subscribers": len(self.subscribers), "failed": self.failed, "connect_s": time.monotonic() - started}

    async def _one(self) -> None:
        subscriber = Subscriber()
        try:
            async with self._gate:
                await subscriber.connect(self.port)
            async with asyncio.timeout(FIRST_FRAME_TIMEOUT_S):
                await subscriber.first.wait()
        except Exception as exc:  # counted and reported: a run with failures says so
            logging.warning("subscriber failed: %r", exc)
            self.failed += 1
            await subscriber.pc.close()
        else:
            self.subscribers.append(subscriber)

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        if command["cmd"] == "add":
            return await self.add(int(command["count"]))
        if command["cmd"] == "stats":
            return {"frames": [s.frames for s in self.subscribers], "bytes": [s.bytes for s in self.subscribers]}
        raise ValueError(f"unknown command {command!r}")

    async def close(self) -> None:
        await asyncio.gather(*(s.pc.close() for s in self.subscribers), return_exceptions=True)


async def serve(port: int) -> None:
    wire.loopback()
    hooks.install()
    crowd = Crowd(port)
    wire.reply({"ready": True})
    try:
        await wire.serve_commands(crowd.handle)
    finally:
        await crowd.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    wire.run(serve(args.port))


if __name__ == "__main__":
    main()
