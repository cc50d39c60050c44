"""What the three bench/relay processes share: the signaling wire, the control loop and the event loop.

- **Signaling** (``request``): one JSON object per line over TCP to the bench server on 127.0.0.1; one
  request per connection. The bench server stands in for the room socket, which needs accounts and a
  live session that this benchmark has no use for.
- **Control** (``serve_commands``): the runner drives the publisher and subscriber processes through
  their stdin and reads one JSON reply per command on their stdout (logs go to stderr).
- **Loop** (``run``): uvloop when installed, as uvicorn picks it for the real server, unless the runner
  asks for asyncio's own loop (``FORUMLIVE_BENCH_LOOP=asyncio``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from realtime.media import hooks

HOST = "127.0.0.1"
LOOP_ENV = "FORUMLIVE_BENCH_LOOP"

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def loopback() -> None:
    """ICE on loopback only: aioice leaves 127.0.0.1 out by default (see ``hooks.limit_host_addresses``)."""
    hooks.limit_host_addresses([HOST])


async def request(port: int, message: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    """Send one signaling request to the bench server and return its reply."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(HOST, port, limit=2**20)
        try:
            writer.write(json.dumps(message).encode() + b"\n")
            await writer.drain()
            reply = json.loads(await reader.readline())
        finally:
            writer.close()
    if "error" in reply:
        raise RuntimeError(f"bench server: {reply['error']}")
    return reply


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve_commands(handle: Handler) -> None:
    """Answer the runner's commands (one JSON object a line on stdin) until ``stop`` or end of input."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        if command["cmd"] == "stop":
            reply({"ok": True})
            return
        reply(await handle(command))


def run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is None or os.environ.get(LOOP_ENV) == "asyncio":
        asyncio.run(main)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
