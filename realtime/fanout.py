"""Delivery to one connection: a bounded queue, drained in order, without a task switch per frame.

The room never waits on a slow consumer: frames are put without waiting, and a connection whose
queue is full is closed (it will resume from its last sequence number), so one slow phone cannot
grow the server's memory or hold up everyone else.

Speed: the obvious design, one writer task per connection woken for every frame, spent most of its
time waking tasks (37% of the server's CPU with 5,000 viewers in ``bench/fanout``). Here a frame
sent to an idle connection is written at once: the socket's send coroutine is stepped eagerly and,
when the socket can take the data (almost always), finishes without ever suspending. Only when it
must wait (the peer reads slowly) does a task take over, and frames queue behind it in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

# Frames waiting for one connection; at 5 events/s this is well over a minute of backlog.
QUEUE_FRAMES = 512


def text_frame(text: str) -> bytes:
    """The bytes of a final, unmasked WebSocket text frame carrying ``text`` (what a server sends; RFC 6455
    section 5.2), built once and written as they are to every connection that gets this text."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


class SlowConsumer(Exception):
    """The connection's queue is full."""


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Run a coroutine that was started eagerly and suspended on ``waiting_on`` to its end.

    This is what an asyncio Task does between steps: wait for what the coroutine yielded, then
    resume it with ``send(None)`` (a future re-raises its own exception inside the coroutine).
    """
    try:
        while True:
            if waiting_on is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False
                try:
                    await waiting_on
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # this drain was cancelled (the connection is closing)
                except Exception:  # noqa: BLE001, S110 - the coroutine gets the same error when resumed
                    pass
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                return
    finally:
        coro.close()


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
        write_frame: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._send = send
        self._write_frame = write_frame
        self._close = close
        self._maxsize = maxsize
        self._queue: deque[str] = deque()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False
        self.close_code: int | None = None

    def start(self) -> None:
        """Nothing to start: kept so callers need not know how frames are drained."""

    def put(self, frame: str, wire: bytes | None = None) -> None:
        """Send or queue a frame without waiting (``wire``: the same frame as ``text_frame(frame)`` built,
        written as it is where the socket takes ready-made frames).

        Raises:
            SlowConsumer: the queue is full; the caller closes the connection.
        """
        if self.closed:
            return
        if not self._idle.is_set():
            if len(self._queue) >= self._maxsize:
                raise SlowConsumer
            self._queue.append(frame)
            return
        if wire is not None and self._write_frame is not None and self._write_frame(wire):
            return
        coro = self._send(frame)  # type: ignore[assignment]
        try:
            waiting_on = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return  # written without suspending: the common case
        except Exception:  # noqa: BLE001 - the peer went away; the reader side notices and cleans up
            self.closed = True
            return
        self._idle.clear()
        self._task = asyncio.create_task(self._drain(coro, waiting_on))  # type: ignore[arg-type]

    async def _drain(self, first: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        try:
            await _finish(first, waiting_on)
            while self._queue:
                await self._send(self._queue.popleft())
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the peer went away
            self.closed = True
        finally:
            self._idle.set()

    async def close(self, code: int, reason: str) -> None:
        """Stop sending and close the socket (frames still queued are dropped)."""
        if self.closed and self.close_code is not None:
            return
        self.closed = True
        self.close_code = code
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    async def flush(self, timeout_s: float = 2.0) -> None:
        """Wait until queued frames are sent (used before a deliberate close)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
