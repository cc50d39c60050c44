"""Delivery to one connection: a bounded queue drained by one writer task.

The room never waits on a slow consumer: frames are put without waiting, and a connection whose
queue is full is closed (it will resume from its last sequence number), so one slow phone cannot
grow the server's memory or hold up everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

# Frames waiting for one connection; at 5 events/s this is well over a minute of backlog.
QUEUE_FRAMES = 512


class SlowConsumer(Exception):
    """The connection's queue is full."""


class Outbox:
    """A connection's outgoing frames.

    Args:
        send: sends one text frame (the socket's send).
        close: closes the socket with a code and reason.
    """

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        maxsize: int = QUEUE_FRAMES,
    ) -> None:
        self._send = send
        self._close = close
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_code: int | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain())

    def put(self, frame: str) -> None:
        """Queue a frame without waiting.

        Raises:
            SlowConsumer: the queue is full; the caller closes the connection.
        """
        if self.closed:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            raise SlowConsumer from None

    async def _drain(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                try:
                    await self._send(frame)
                finally:
                    self._queue.task_done()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the peer went away; the reader side notices and cleans up
            self.closed = True

    async def close(self, code: int, reason: str) -> None:
        """Stop sending and close the socket (frames still queued are dropped)."""
        if self.closed and self.close_code is not None:
            return
        self.closed = True
        self.close_code = code
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    async def flush(self, timeout_s: float = 2.0) -> None:
        """Wait until queued frames are sent (used before a deliberate close)."""
        if self.closed:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
