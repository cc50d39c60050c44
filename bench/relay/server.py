"""The bench server: one publisher's track relayed to every subscriber, by one relay.

    python bench/relay/server.py --mode passthrough|reencode

- ``passthrough``: what ``server/rooms/media.py`` does. The hooks are installed, so the publisher's
  track yields encoded packets; one ``Publication`` reads it and each subscriber's sender gets a
  ``SubscriberTrack`` whose packets it sends as they are.
- ``reencode``: aiortc's stock relay. No hooks, so aiortc decodes the publisher's track once and
  ``MediaRelay().subscribe(track)`` gives each subscriber's sender decoded frames, which it encodes again.

Both read the publisher's track from the moment it arrives, with or without subscribers (the
``Publication`` does; in ``reencode`` one relay subscription is drained here), so that the
publisher-only baseline costs the same work as it would in the server. Codecs are pinned to Opus and VP8
and ICE uses loopback only, as in the server. Neither mode runs the captioning tap: only the relay is
measured.

Prints ``{"port": n}`` on stdout, then answers JSON lines on 127.0.0.1:n (one request per connection):

    {"op": "publish", "sdp": OFFER}          -> {"sdp": ANSWER}
    {"op": "subscribe"}                      -> {"id": 3, "sdp": OFFER}
    {"op": "answer", "id": 3, "sdp": ANSWER} -> {"ok": true}
    {"op": "stats"}                          -> {"frames_in": ..., "subscribers": ..., "queued": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
    sdp,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.relay import wire  # noqa: E402
from realtime.media import hooks  # noqa: E402
from realtime.media.relay import Publication, SubscriberTrack  # noqa: E402
from server.rooms.media import codec_preferences  # noqa: E402

log = logging.getLogger("bench.relay.server")


class BenchServer:
    """Signaling for one publisher and many subscribers; the relay itself is the subclass's."""

    def __init__(self) -> None:
        self.publisher: RTCPeerConnection | None = None
        self.kind: str | None = None
        self.subscribers: dict[int, RTCPeerConnection] = {}
        self.failed = 0
        self.published = asyncio.Event()
        self._keys = itertools.count(1)

    @staticmethod
    def _peer() -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # explicit: no public STUN server

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message["op"]
        if op == "publish":
            return await self.publish(message["sdp"])
        if op == "subscribe":
            return await self.subscribe()
        if op == "answer":
            pc = self.subscribers[message["id"]]
            await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
            return {"ok": True}
        if op == "stats":
            return {"subscribers": len(self.subscribers), "failed": self.failed, **self.stats()}
        raise ValueError(f"unknown op {op!r}")

    async def publish(self, offer: str) -> dict[str, Any]:
        pc = self.publisher = self._peer()

        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            self.kind = track.kind
            self.on_track(track, receiver)
            self.published.set()

        pc.on("track", on_track)
        for media in sdp.SessionDescription.parse(offer).media:  # as MediaService._publish does
            pc.addTransceiver(media.kind, direction="recvonly").setCodecPreferences(codec_preferences(media.kind))
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp}

    async def subscribe(self) -> dict[str, Any]:
        async with asyncio.timeout(30):
            await self.published.wait()
        assert self.kind is not None
        pc = self._peer()
        key = next(self._keys)
        self.subscribers[key] = pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed" and self.subscribers.pop(key, None) is not None:
                self.failed += 1

        transceiver = pc.addTransceiver(self.subscriber_track(), direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences(self.kind))
        await pc.setLocalDescription(await pc.createOffer())
        return {"id": key, "sdp": pc.localDescription.sdp}

    def on_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        raise NotImplementedError

    def subscriber_track(self) -> MediaStreamTrack:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError


class PassThrough(BenchServer):
    def __init__(self) -> None:
        super().__init__()
        hooks.install()
        self.publication: Publication | None = None
        self.tracks: list[SubscriberTrack] = []

    def on_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        self.publication = Publication(1, track.kind, track, receiver)
        self.publication.start()

    def subscriber_track(self) -> MediaStreamTrack:
        assert self.publication is not None
        track = SubscriberTrack(self.publication.kind)
        track.attach(self.publication)  # as MediaService._sync does before it offers
        self.tracks.append(track)
        return track

    def stats(self) -> dict[str, Any]:
        return {
            "frames_in": self.publication.packets_in if self.publication else 0,
            "frames_out": sum(t.packets_out for t in self.tracks),
            "dropped": sum(t.packets_dropped for t in self.tracks),
            "queued": sum(len(t._queue) for t in self.tracks),  # noqa: SLF001 - a bench may look inside
        }


class Reencode(BenchServer):
    def __init__(self) -> None:
        super().__init__()
        hooks.uninstall()  # aiortc as shipped: remote tracks decode
        self.relay = MediaRelay()
        self.source: MediaStreamTrack | None = None
        self.proxies: list[Any] = []
        self.frames_in = 0
        self._drain: asyncio.Task[None] | None = None

    def on_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        self.source = track
        self._drain = asyncio.create_task(self.drain(self.relay.subscribe(track)))

    async def drain(self, proxy: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await proxy.recv()
                self.frames_in += 1

    def subscriber_track(self) -> MediaStreamTrack:
        proxy = self.relay.subscribe(self.source)
        self.proxies.append(proxy)
        return proxy

    def stats(self) -> dict[str, Any]:
        return {
            "frames_in": self.frames_in,
            "queued": sum(p._queue.qsize() for p in self.proxies if p._queue is not None),  # noqa: SLF001
        }


async def serve(mode: str) -> None:
    wire.loopback()
    server = PassThrough() if mode == "passthrough" else Reencode()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                answer = await server.handle(json.loads(line))
            except Exception as exc:  # reported to the client, which fails the run
                log.exception("request failed")
                answer = {"error": repr(exc)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    listener = await asyncio.start_server(connection, wire.HOST, 0, limit=2**20)
    port = listener.sockets[0].getsockname()[1]
    wire.reply({"port": port})
    async with listener:
        await listener.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["passthrough", "reencode"], required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    wire.run(serve(args.mode))


if __name__ == "__main__":
    main()
