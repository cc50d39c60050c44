"""Fan-out in the room service: a slow consumer is cut off, never slowing the others."""

from __future__ import annotations

import asyncio
from datetime import date

from realtime import protocol
from realtime.fanout import QUEUE_FRAMES, Outbox
from realtime.log import Event
from realtime.room import Actor, Role
from server.rooms.service import CloseCode, RoomService
from server.storage import migrate
from server.storage.db import Database
from server.storage.models import Forum, Person, Session
from server.storage.types import utcnow
from tests.realtime.test_fanout import Peer


async def test_slow_consumer_is_disconnected_and_others_get_everything(tmp_path) -> None:  # noqa: ANN001
    """Broadcasting more than a queue holds closes the stalled peer with 4408; a healthy peer receives all."""
    database = Database(f"sqlite:///{tmp_path}/f.db")
    migrate.upgrade(database.engine)

    def seed(db):  # noqa: ANN001, ANN202
        forum = Forum(slug="f", name="F", start_date=date(2026, 1, 1), end_date=date(2026, 1, 2))
        db.add(forum)
        db.flush()
        session = Session(
            forum_id=forum.id, code="S", title="S", type="talkx", starts_at=utcnow(), ends_at=utcnow(), status="live"
        )
        db.add(session)
        for person_id in (1, 2):
            db.add(Person(id=person_id, email=f"p{person_id}@example.org", password_hash="x", name=f"P{person_id}"))
        db.flush()
        return session.id

    session_id = database.run_write(seed)
    service = RoomService(database, presence_flush_s=3600)  # no presence events in this test
    live = await service.room(session_id)
    slow, fast = Peer(stalled=True), Peer()
    total = QUEUE_FRAMES + 50
    fast.expect = total + 1  # welcome + the events
    hello = protocol.Hello(type="hello")
    fast_conn = await service.join(live, Actor(1, "Fast", Role.PARTICIPANT), Outbox(fast.send, fast.close), hello)
    await service.join(live, Actor(2, "Slow", Role.PARTICIPANT), Outbox(slow.send, slow.close), hello)
    events = [
        Event("chat.posted", {"id": i, "person_id": 1, "name": "Fast", "text": str(i), "at": 0.0})
        for i in range(1, total + 1)
    ]
    for start in range(0, total, 10):  # a steady stream: the healthy peer drains between batches
        batch = live.room.apply(events[start : start + 10])
        service._broadcast(live, batch)
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await fast.got_all.wait()
        while slow.closed_with is None:
            await asyncio.sleep(0)  # let the close task run
    assert slow.closed_with[0] == CloseCode.SLOW_CONSUMER
    assert len(fast.frames) == total + 1
    assert not fast_conn.outbox.closed
    database.dispose()
