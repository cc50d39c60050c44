"""The outbox: a bounded per-connection queue."""

from __future__ import annotations

import asyncio

import pytest

from realtime.fanout import QUEUE_FRAMES, Outbox, SlowConsumer


class Peer:
    """A socket at the fan-out seam: records frames, or never finishes sending (a stalled phone)."""

    def __init__(self, stalled: bool = False) -> None:
        self.frames: list[str] = []
        self.closed_with: tuple[int, str] | None = None
        self.stalled = stalled
        self.got_all = asyncio.Event()
        self.expect = 0

    async def send(self, frame: str) -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.frames.append(frame)
        if len(self.frames) >= self.expect:
            self.got_all.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def test_outbox_refuses_past_its_bound() -> None:
    """A stalled connection's queue holds QUEUE_FRAMES frames; the next put raises SlowConsumer."""
    peer = Peer(stalled=True)
    outbox = Outbox(peer.send, peer.close)
    outbox.start()
    for i in range(QUEUE_FRAMES + 1):  # one frame is being written (stalled), the rest wait
        outbox.put(f"frame {i}")
    with pytest.raises(SlowConsumer):
        outbox.put("one too many")
    await outbox.close(4408, "slow")
    assert peer.closed_with == (4408, "slow")


async def test_idle_connection_writes_without_a_task_and_keeps_order() -> None:
    """Frames to an idle peer are written at once; after a stall, queued frames follow in order."""
    sent: list[str] = []
    gate = asyncio.Event()
    gate.set()

    async def send(frame: str) -> None:
        await gate.wait()
        sent.append(frame)

    async def close(code: int, reason: str) -> None:
        pass

    outbox = Outbox(send, close)
    outbox.put("a")
    assert sent == ["a"]  # written synchronously, no task involved
    gate.clear()
    for frame in ("b", "c", "d"):
        outbox.put(frame)
    assert sent == ["a"]
    gate.set()
    await outbox.flush()
    assert sent == ["a", "b", "c", "d"]
    outbox.put("e")
    assert sent[-1] == "e"


async def test_a_failing_peer_marks_the_outbox_closed() -> None:
    """An error from the socket (peer gone) stops sending instead of raising into the room."""

    async def send(frame: str) -> None:
        raise ConnectionResetError

    async def close(code: int, reason: str) -> None:
        pass

    outbox = Outbox(send, close)
    outbox.put("x")
    assert outbox.closed
    outbox.put("y")  # ignored
