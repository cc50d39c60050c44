"""The load process: N viewer connections and one publisher, all real ``websockets`` clients.

Prints one JSON line: per-event delivery latencies (percentiles), events lost, delivered rate.
The publisher puts its send time in each caption-sized message; viewers on the same machine
subtract it from their receive time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

TEXT = " Live caption text of about one spoken sentence, as long as a real caption line would be on screen."
MARK = "t="


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.received = 0
        self.failed: list[str] = []
        self.never_joined = 0


def _mark(frame: str) -> float | None:
    at = frame.find(MARK)
    if at < 0:
        return None
    end = frame.find(" ", at)
    return float(frame[at + len(MARK) : end])


async def viewer(
    url: str,
    headers: dict[str, str],
    origin: str,
    mode: str,
    stats: Stats,
    ready: asyncio.Event,
    connected: list[int],
    total: int,
    sockets: list[ClientConnection],
) -> None:
    joined = [False]
    try:
        await _view(url, headers, origin, mode, stats, ready, connected, total, sockets, joined)
    except Exception as exc:  # noqa: BLE001 - counted: a viewer that failed to join or was cut off
        stats.failed.append(type(exc).__name__ + ": " + str(exc)[:80])
        if not joined[0]:
            stats.never_joined += 1
            if connected[0] + stats.never_joined == total:
                ready.set()  # nobody else is coming: measure with those who made it


async def _view(
    url: str,
    headers: dict[str, str],
    origin: str,
    mode: str,
    stats: Stats,
    ready: asyncio.Event,
    connected: list[int],
    total: int,
    sockets: list[ClientConnection],
    joined: list[bool],
) -> None:
    async with connect(
        url,
        origin=origin,
        additional_headers=headers,
        max_queue=None,
        compression=None,
        open_timeout=300,
        ping_interval=None,
    ) as ws:
        await ws.send('{"type":"hello","v":1}' if mode == "room" else "view")
        await ws.recv()  # welcome
        sockets.append(ws)
        joined[0] = True
        connected[0] += 1
        if connected[0] + stats.never_joined == total:
            ready.set()
        beat = asyncio.create_task(_heartbeat(ws)) if mode == "room" else None
        try:
            async for frame in ws:
                sent = _mark(frame)
                if sent is not None:
                    stats.latencies.append(time.time() - sent)
                    stats.received += 1
        finally:
            if beat is not None:
                beat.cancel()


async def _heartbeat(ws: ClientConnection) -> None:
    """The room closes connections silent for 60 s."""
    while True:
        await asyncio.sleep(20)
        await ws.send('{"type":"ping"}')


async def publish(url: str, headers: dict[str, str], origin: str, mode: str, rate: float, duration: float) -> int:
    sent = 0
    async with connect(url, origin=origin, additional_headers=headers, compression=None) as ws:
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
            sent += 1
            await asyncio.sleep(max(0.0, sent / rate - elapsed))
        reader.cancel()
    return sent


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


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
    cookies = open(args.cookies).read().split() if args.cookies else []  # noqa: SIM115
    stats, ready, connected = Stats(), asyncio.Event(), [0]
    sockets: list[ClientConnection] = []
    tasks = []
    began = time.monotonic()
    for i in range(args.first, args.first + args.viewers):
        headers = {"Cookie": f"forumlive_session={cookies[i]}"} if cookies else {}
        tasks.append(
            asyncio.create_task(
                viewer(args.url, headers, args.origin, args.mode, stats, ready, connected, args.viewers, sockets)
            )
        )
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # open connections in waves, as an audience arrives
    async with asyncio.timeout(600):
        await ready.wait()
    connect_s = time.monotonic() - began
    # Tell the orchestrator, then wait until every load process is ready too.
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    sent = 0
    if args.publish:
        pub_headers = {"Cookie": f"forumlive_session={args.publisher_cookie}"} if args.publisher_cookie else {}
        sent = await publish(args.url, pub_headers, args.origin, args.mode, args.rate, args.duration)
    else:
        await asyncio.sleep(args.duration)
    await asyncio.sleep(3.0)  # let the last events arrive
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    print(
        json.dumps(
            {
                "viewers": args.viewers,
                "sent": sent,
                "received": stats.received,
                "latencies": [round(x, 5) for x in stats.latencies],
                "connect_s": round(connect_s, 1),
                "failed_viewers": len(stats.failed),
                "failures": sorted(set(stats.failed))[:5],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
