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
    for i in range(QUEUE_FRAMES):
        outbox.put(f"frame {i}")
    with pytest.raises(SlowConsumer):
        outbox.put("one too many")
    await outbox.close(4408, "slow")
    assert peer.closed_with == (4408, "slow")
