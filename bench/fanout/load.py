"""The load process: N viewer connections and one publisher.

Prints one JSON line: per-event delivery latencies (percentiles), events lost, delivered rate.
The publisher (a ``websockets`` client) puts its send time in each caption-sized message; viewers on
the same machine subtract it from their receive time.

Each viewer is a real WebSocket connection of its own (HTTP upgrade, the room's hello, every event
frame received and parsed), but written as a bare ``asyncio.Protocol`` rather than a ``websockets``
client: a ``websockets`` connection costs a task, a queue and a frame object per message, which on a
small machine makes the load process, not the server, what is measured at 10,000 viewers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TEXT = " Live caption text of about one spoken sentence, as long as a real caption line would be on screen."
MARK = "t="
_MARK = MARK.encode()
# An event not received this long after the publisher's last one is lost.
GRACE_S = 3.0
# The room closes connections silent for 60 s: every viewer sends the protocol's ping this often.
PING_EVERY_S = 20.0

# WebSocket opcodes (RFC 6455).
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def _mark(frame: bytes) -> float | None:
    at = frame.find(_MARK)
    if at < 0:
        return None
    end = frame.find(b" ", at)
    return float(frame[at + len(_MARK) : end])


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked frame, as a client must send it."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    repeated = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big") if size else b""
    return head + mask + masked


@dataclass
class Audience:
    """What the viewers of this load process share: where to connect, what they measured, who is in."""

    url: str
    origin: str
    mode: str
    total: int
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    failed: list[str] = field(default_factory=list)
    connected: int = 0
    never_joined: int = 0
    viewers: list[Viewer] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def joined(self) -> None:
        self.connected += 1
        self._check()

    def lost(self, viewer: Viewer, reason: str) -> None:
        self.failed.append(reason[:120])
        if not viewer.joined:
            self.never_joined += 1
            self._check()  # nobody else is coming: measure with those who made it

    def _check(self) -> None:
        if self.connected + self.never_joined == self.total:
            self.ready.set()


class Viewer(asyncio.Protocol):
    """One viewer's socket: the upgrade, the first message, then frames parsed as they arrive."""

    def __init__(self, audience: Audience, cookie: str) -> None:
        self.audience, self.cookie = audience, cookie
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = self.joined = self.closing = False
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] (uvloop's transports are not asyncio.Transport)
        parts = urlsplit(self.audience.url)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {parts.path or '/'} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: {self.audience.origin}",
        ]
        if self.cookie:
            lines.append(f"Cookie: forumlive_session={self.cookie}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            if b" 101 " not in status:
                self._fail("handshake: " + status.decode(errors="replace"))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.send(_TEXT, b'{"type":"hello","v":1}' if self.audience.mode == "room" else b"view")
        now = time.time()
        while len(buffer) >= 2:
            opcode, size = buffer[0] & 0x0F, buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode in (_TEXT, _BINARY, _CONTINUATION):
                if not self.joined:
                    self.joined = True  # the welcome
                    self.audience.joined()
                    continue
                sent = _mark(payload)
                if sent is not None:
                    self.audience.latencies.append(now - sent)
                    self.audience.received += 1
            elif opcode == _PING:
                self.send(_PONG, payload)
            elif opcode == _CLOSE:
                if not self.closing:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self._fail(f"closed by the server: {code} {payload[2:].decode(errors='replace')}")
                return

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def close(self) -> None:
        self.closing = True
        self.send(_CLOSE, (1000).to_bytes(2, "big"))
        if self.transport is not None:
            self.transport.close()

    def _fail(self, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.audience.lost(self, reason)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.closing = True
            self.audience.lost(self, f"connection lost: {exc!r}")
        if not self.done.done():
            self.done.set_result(None)


async def open_viewer(audience: Audience, cookie: str) -> None:
    parts = urlsplit(audience.url)
    viewer = Viewer(audience, cookie)
    try:
        await asyncio.get_running_loop().create_connection(lambda: viewer, parts.hostname, parts.port or 80)
    except OSError as exc:
        audience.lost(viewer, f"connect: {exc!r}")
        return
    audience.viewers.append(viewer)


async def heartbeat(audience: Audience) -> None:
    """The protocol's ping from every joined viewer every ``PING_EVERY_S``, spread over the interval."""
    ping = b'{"type":"ping"}'
    while True:
        viewers = [v for v in audience.viewers if v.joined and not v.closing]
        step = PING_EVERY_S / max(1, len(viewers))
        for index, viewer in enumerate(viewers):
            viewer.send(_TEXT, ping)
            if index % 100 == 99:
                await asyncio.sleep(100 * step)
        await asyncio.sleep(step if viewers else PING_EVERY_S)


async def publish(
    url: str, headers: dict[str, str], origin: str, mode: str, rate: float, duration: float, failed: list[str]
) -> int:
    """Send caption-sized events at ``rate`` for ``duration``; returns how many went. A publisher cut off by the
    server (an overloaded server closes sockets whose pongs it reads too late) stops there and says why."""
    sent = [0]
    try:
        await _publish(url, headers, origin, mode, rate, duration, sent)
    except ConnectionClosed as exc:
        failed.append(f"publisher cut off after {sent[0]} events: {exc}"[:160])
    return sent[0]


async def _publish(
    url: str, headers: dict[str, str], origin: str, mode: str, rate: float, duration: float, sent: list[int]
) -> None:
    # No client-side keepalive: the server pings this socket and closes it if the pong is late.
    async with connect(url, origin=origin, additional_headers=headers, compression=None, ping_interval=None) as ws:
        if mode == "room":
            await ws.send('{"type":"hello","v":1}')
            await ws.recv()
        else:
            await ws.send("pub")
        # A real client reads what it is sent; one that does not stops answering the server's pings.
        reader = asyncio.create_task(_drain(ws))
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            text = f"{MARK}{time.time():.6f}{TEXT}"
            if mode == "room":
                await ws.send(json.dumps({"type": "chat.send", "text": text}))
            else:
                await ws.send(json.dumps({"type": "event", "kind": "chat.posted", "data": {"text": text}}))
            sent[0] += 1
            await asyncio.sleep(max(0.0, sent[0] / rate - elapsed))
        reader.cancel()


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--mode", choices=["room", "bare"], required=True)
    parser.add_argument("--cookies", help="file with one viewer cookie per line (room mode)")
    parser.add_argument("--first", type=int, default=0, help="index of this process's first viewer")
    parser.add_argument("--viewers", type=int, required=True, help="viewers in this process")
    parser.add_argument("--publisher-cookie", default="")
    parser.add_argument("--publish", action="store_true", help="this process also runs the publisher")
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    raise_fd_limit(args.viewers)
    cookies = open(args.cookies).read().split() if args.cookies else []  # noqa: SIM115
    audience = Audience(args.url, args.origin, args.mode, args.viewers)
    began = time.monotonic()
    for i in range(args.first, args.first + args.viewers):
        await open_viewer(audience, cookies[i] if cookies else "")
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # open connections in waves, as an audience arrives
    if not args.viewers:
        audience.ready.set()
    beat = asyncio.create_task(heartbeat(audience))
    async with asyncio.timeout(600):
        await audience.ready.wait()
    connect_s = time.monotonic() - began
    # Tell the orchestrator, then wait until every load process is ready too.
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    sent, publisher_error = 0, []
    if args.publish:
        pub_headers = {"Cookie": f"forumlive_session={args.publisher_cookie}"} if args.publisher_cookie else {}
        sent = await publish(args.url, pub_headers, args.origin, args.mode, args.rate, args.duration, publisher_error)
    else:
        # The orchestrator says STOP once the publisher has sent its last event (its connecting and any stall
        # are not known here); the last events then have GRACE_S to arrive.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if audience.viewers:
        await asyncio.sleep(GRACE_S)
    beat.cancel()
    for viewer in audience.viewers:
        viewer.close()
    await asyncio.gather(*(v.done for v in audience.viewers), return_exceptions=True)
    print(
        json.dumps(
            {
                "viewers": args.viewers,
                "sent": sent,
                "received": audience.received,
                "latencies": [round(x, 5) for x in audience.latencies],
                "connect_s": round(connect_s, 1),
                "failed_viewers": len(audience.failed),
                "publisher_error": publisher_error[0] if publisher_error else None,
                "failures": sorted(set(audience.failed))[:5],
            }
        )
    )


def run() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


if __name__ == "__main__":
    run()
