"""The database outbox of shared rooms: committed events reach the bus even when Redis is down and their owner
dies before publishing them. ``SharedRoomService`` processes in one test process, one SQLite file and a real
``redis-server`` each test may stop and start again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from realtime.bus import Gap
from server import metrics
from server.rooms import cluster
from server.rooms.shared import SharedRoomService
from server.settings import Settings
from server.storage.db import Database
from server.storage.models import BusOutbox
from tests.server.test_rooms_shared import ANA, BEN, MODERATOR, Viewer, connect, seed, send
from tests.services import RedisServer, redis_process


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_process() as server:
        yield server


class Cluster:
    """Processes sharing rooms; ``abandon`` one to make it die as a crash would (nothing flushed, nothing released)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.services: list[SharedRoomService] = []
        self.abandoned: list[SharedRoomService] = []

    async def start(self, count: int) -> list[SharedRoomService]:
        for _ in range(count):
            service = SharedRoomService(self.database, self.settings)
            service.presence_flush_s = 0.05
            await service.start()
            self.services.append(service)
        return list(self.services)

    async def abandon(self, service: SharedRoomService) -> None:
        """Stop every task of the process and of its bus (reader and writer) without closing anything: its
        heartbeat and lease lapse, and what waits in its bus's outbox is never written."""
        tasks = {*service._tasks, *service.bus._tasks}
        for live in service.rooms.values():
            tasks |= {*live.tasks, *([live.commands] if live.commands else [])}  # type: ignore[attr-defined]
        while tasks:
            for task in tasks:
                task.cancel()
            _, tasks = await asyncio.wait(tasks, timeout=0.1)  # a cancel can be lost in redis-py (see RedisBus)
        self.services.remove(service)
        self.abandoned.append(service)

    async def stop(self) -> None:
        for service in self.services:
            await service.stop()
        for service in self.abandoned:
            await service.bus.close(flush_s=0)
            await service.registry.close()


@pytest.fixture
async def processes(database: Database, redis: RedisServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    settings = Settings(
        data_dir=tmp_path, redis_url=redis.url, secret_key="k" * 32, cluster_lease_s=2.0, cluster_heartbeat_s=0.25
    )
    cluster_ = Cluster(database, settings)
    yield cluster_
    await cluster_.stop()


def rows(database: Database) -> list[BusOutbox]:
    return database.run_read(lambda db: db.exec(select(BusOutbox).order_by(BusOutbox.id)).all())


async def until_no_rows(database: Database, *services: SharedRoomService, timeout_s: float = 10.0) -> None:
    """Wait until the outbox is empty and the services have seen their deletes through."""
    async with asyncio.timeout(timeout_s):
        while rows(database) or any(s.outbox_waiting for s in services):
            await asyncio.sleep(0.05)


def texts(row: BusOutbox) -> list[str]:
    batch = cluster.parse(cluster.FromOwner, row.payload)
    return [e.data["text"] for e in batch.events if e.kind == "chat.posted"]


def chat_events(viewer: Viewer) -> list[tuple[int, str, Any]]:
    """(index in the frames, epoch, text) of the chat events the viewer got."""
    return [
        (i, m["epoch"], m["data"]["text"])
        for i, m in enumerate(viewer.messages)
        if m["type"] == "event" and m["kind"] == "chat.posted"
    ]


async def test_a_commit_while_redis_is_down_waits_as_a_row_until_redis_has_it(
    database: Database, redis: RedisServer, processes: Cluster
) -> None:
    """The owner commits a chat line while Redis is unreachable: its batch is a row of the outbox (and counted in
    /metrics) until Redis is back and has taken the message; the client on the other process gets the line."""
    a, b = await processes.start(2)
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    live_a, conn_mo = await connect(a, sid, mo)
    await connect(b, sid, ana)
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "before"}')
    await ana.until(lambda: ana.chat() == ["before"])
    await until_no_rows(database, a)  # published, so deleted

    redis.stop()
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "during", "ref": "d"}')
    assert mo.reply("d")["type"] == "ack"
    (row,) = rows(database)
    assert (row.topic, row.node, texts(row)) == (cluster.room_topic(sid), a.node, ["during"])
    batch = cluster.parse(cluster.FromOwner, row.payload)
    assert batch.epoch == live_a.room.log.epoch
    assert [e.seq for e in batch.events] == [live_a.room.log.seq]  # the seq the event was then applied with
    assert a.outbox_waiting == {row.id}
    assert 'forumlive_outbox_rows{scope="mine"} 1' in metrics.render(a, None)
    await asyncio.sleep(0.5)  # the deleter runs meanwhile: the row stays while Redis has not got the message
    assert [r.id for r in rows(database)] == [row.id]

    redis.start()
    await ana.until(lambda: ana.chat() == ["before", "during"], timeout_s=20)
    await until_no_rows(database, a)
    assert 'forumlive_outbox_rows{scope="mine"} 0' in metrics.render(a, None)


async def test_an_owner_dead_with_redis_down_leaves_rows_the_next_owner_publishes(
    database: Database, redis: RedisServer, processes: Cluster
) -> None:
    """The owner commits chat lines while Redis is down and dies before Redis is back: its rows stay, the process
    that takes the room over publishes them and deletes them, and clients on the other processes have every line."""
    a, b, c = await processes.start(3)
    sid = seed(database)
    mo, ana, ben = Viewer(MODERATOR), Viewer(ANA), Viewer(BEN)
    live_a, conn_mo = await connect(a, sid, mo)
    await connect(b, sid, ana)
    await connect(c, sid, ben)
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "one"}')
    for viewer in (ana, ben):
        await viewer.until(lambda v=viewer: v.chat() == ["one"])
    await until_no_rows(database)

    redis.stop()
    for text in ("two", "three"):
        await send(a, live_a, conn_mo, json.dumps({"type": "chat.send", "text": text, "ref": text}))
        assert mo.reply(text)["type"] == "ack"
    await processes.abandon(a)
    assert [(r.node, texts(r)) for r in rows(database)] == [(a.node, ["two"]), (a.node, ["three"])]

    redis.start()
    for viewer in (ana, ben):
        await viewer.until(lambda v=viewer: v.chat() == ["one", "two", "three"], timeout_s=20)
    new_owner = b if b.rooms[sid].owner else c  # type: ignore[attr-defined]
    assert new_owner.rooms[sid].owner  # type: ignore[attr-defined]
    await until_no_rows(database, new_owner)


async def test_a_replica_gets_a_dead_owners_unpublished_events_in_order_before_the_new_state(
    database: Database, processes: Cluster
) -> None:
    """The owner dies before its bus wrote its last batches: the new owner publishes them from the outbox before its
    state, so a client of the third process gets them as events of the old epoch, in order, then the new welcome.
    A batch of the old epoch that comes after the new state (the old owner's own copy, late) is ignored."""
    a, b, c = await processes.start(3)
    sid = seed(database)
    mo, ana, ben = Viewer(MODERATOR), Viewer(ANA), Viewer(BEN)
    live_a, conn_mo = await connect(a, sid, mo)
    await connect(b, sid, ana)
    await connect(c, sid, ben)
    for viewer in (mo, ana, ben):  # presence settled: nothing of the owner's is left to publish
        await viewer.until(lambda v=viewer: v.state.view["count"] == 3)
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "one"}')
    for viewer in (ana, ben):
        await viewer.until(lambda v=viewer: v.chat() == ["one"])
    await until_no_rows(database)
    old_epoch = live_a.room.log.epoch

    await processes.abandon(a)  # its bus's writer is gone: what it publishes now waits in memory, never written
    for text in ("two", "three"):
        await send(a, live_a, conn_mo, json.dumps({"type": "chat.send", "text": text, "ref": text}))
        assert mo.reply(text)["type"] == "ack"
    assert [texts(r) for r in rows(database)] == [["two"], ["three"]]

    await ana.until(lambda: b.rooms[sid].owner or c.rooms[sid].owner, timeout_s=15)  # type: ignore[attr-defined]
    if b.rooms[sid].owner:  # type: ignore[attr-defined]
        new_owner, on_owner, replica, viewer = b, ana, c, ben
    else:
        new_owner, on_owner, replica, viewer = c, ben, b, ana
    await viewer.until(lambda: viewer.state.epoch != old_epoch)
    welcome = max(i for i, m in enumerate(viewer.messages) if m["type"] == "welcome")
    late = [(i, text) for i, epoch, text in chat_events(viewer) if epoch == old_epoch and text in ("two", "three")]
    assert [text for _, text in late] == ["two", "three"]
    assert all(i < welcome for i, _ in late)
    assert viewer.chat() == ["one", "two", "three"]
    await until_no_rows(database)

    # The old owner's own copies, published late: ignored by the replica, which does not resync for them.
    requests = await new_owner.bus.subscribe(cluster.owner_topic(sid))
    for item in a.bus._outbox:
        new_owner.bus.publish(cluster.room_topic(sid), item.payload)
    live_owner, live_replica = new_owner.rooms[sid], replica.rooms[sid]
    connection = next(c for c in live_owner.connections if c.actor == on_owner.actor)
    await send(new_owner, live_owner, connection, '{"type": "chat.send", "text": "after"}')
    await viewer.until(lambda: viewer.chat() == ["one", "two", "three", "after"])
    assert live_replica.synced  # type: ignore[attr-defined]
    assert live_replica.room.log.epoch == live_owner.room.log.epoch
    await asyncio.sleep(0.3)  # a state request would have come by now
    asked = []
    while requests._queue:
        item = requests._queue.popleft()
        if not isinstance(item, Gap):
            asked.append(json.loads(item.payload))
    assert not [m for m in asked if m["t"] == "state?" and m["node"] == replica.node]
    requests.close()
