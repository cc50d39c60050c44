"""The ceiling: a bare ``websockets`` broadcast server with no auth, rooms, storage or views.

Viewers connect and listen; a connection whose first message is ``pub`` publishes: each of its
later messages is broadcast to every viewer with ``websockets.broadcast``.
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

viewers: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    first = await ws.recv()
    if first == "pub":
        async for message in ws:
            broadcast(viewers, message)
        return
    viewers.add(ws)
    try:
        await ws.send('{"type":"welcome"}')
        await ws.wait_closed()
    finally:
        viewers.discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None, ping_interval=20):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
