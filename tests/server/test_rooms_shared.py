"""Rooms shared through Redis: two or three ``SharedRoomService`` in one test process, one database and a
real ``redis-server`` — ownership, forwarding, replicas, takeover and malformed bus messages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from realtime import protocol
from realtime.client import ClientState
from realtime.fanout import Outbox
from realtime.limits import RATES
from realtime.room import Actor, Role
from server.rooms import cluster
from server.rooms.shared import SharedRoom, SharedRoomService
from server.settings import Settings
from server.storage.db import Database
from server.storage.models import AttendanceVisit, Forum, Person, Session
from server.storage.types import utcnow
from tests.services import redis_server

HELLO = protocol.Hello(type="hello")
MODERATOR = Actor(1, "Mo", Role.MODERATOR)
ANA = Actor(2, "Ana", Role.PARTICIPANT)
BEN = Actor(3, "Ben", Role.PARTICIPANT)


class Viewer:
    """A connection at the outbox seam that keeps a client model of the room, as the page does."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.messages: list[dict[str, Any]] = []
        self.state: ClientState | None = None
        self.closed_with: tuple[int, str] | None = None
        self._changed = asyncio.Event()

    async def send(self, frame: str) -> None:
        message = json.loads(frame)
        self.messages.append(message)
        if message["type"] == "welcome":
            self.state = ClientState(self.actor.person_id, message)
        elif message["type"] == "event":
            assert self.state is not None
            self.state.receive(message)  # raises on a gap or another epoch
        self._changed.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)
        self._changed.set()

    def outbox(self) -> Outbox:
        return Outbox(self.send, self.close)

    async def until(self, check: Callable[[], Any], timeout_s: float = 10.0) -> Any:  # noqa: ANN401
        """Wait until ``check()`` is truthy (checked after each frame); returns its value."""
        async with asyncio.timeout(timeout_s):
            while not (value := check()):
                self._changed.clear()
                await self._changed.wait()
        return value

    def chat(self) -> list[str]:
        return [m["text"] for m in self.state.view["chat"]] if self.state else []

    def reply(self, ref: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m.get("ref") == ref), None)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def seed(database: Database) -> int:
    def write(db):  # noqa: ANN001, ANN202
        forum = Forum(slug="f", name="F", start_date=date(2026, 1, 1), end_date=date(2026, 1, 2))
        db.add(forum)
        db.flush()
        session = Session(
            forum_id=forum.id, code="S", title="S", type="talkx", starts_at=utcnow(), ends_at=utcnow(), status="live"
        )
        db.add(session)
        for actor in (MODERATOR, ANA, BEN):
            email = f"p{actor.person_id}@example.org"
            db.add(Person(id=actor.person_id, email=email, password_hash="x", name=actor.name))
        db.flush()
        return session.id

    return database.run_write(write)


@pytest.fixture
async def services(database: Database, redis_url: str, tmp_path: Path) -> AsyncIterator[list[SharedRoomService]]:
    # Each test gets its own key prefix space by flushing Redis: rooms are numbered from 1 in every database.
    import redis.asyncio as aioredis

    async with aioredis.Redis.from_url(redis_url) as r:
        await r.flushall()
    settings = Settings(
        data_dir=tmp_path, redis_url=redis_url, secret_key="k" * 32, cluster_lease_s=2.0, cluster_heartbeat_s=0.25
    )
    started: list[SharedRoomService] = []
    for _ in range(3):
        service = SharedRoomService(database, settings)
        service.presence_flush_s = 0.05
        await service.start()
        started.append(service)
    yield started
    for service in started:
        await service.stop()


async def connect(service: SharedRoomService, session_id: int, viewer: Viewer, start: Any = HELLO) -> Any:  # noqa: ANN401
    live = await service.room(session_id)
    connection = await service.join(live, viewer.actor, viewer.outbox(), start)
    await viewer.until(lambda: viewer.state)
    return live, connection


async def send(service: SharedRoomService, live: Any, connection: Any, text: str) -> None:  # noqa: ANN401
    command = protocol.parse_client(text)
    await service.handle(live, connection, command)


async def test_first_process_owns_and_the_second_forwards(database: Database, services) -> None:  # noqa: ANN001
    """Chat and votes from clients on two processes reach both in the same order; acks come back through the bus."""
    a, b, _ = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    live_a, conn_mo = await connect(a, sid, mo)
    live_b, conn_ana = await connect(b, sid, ana)
    assert live_a.owner and not live_b.owner
    for i in range(5):
        await send(a, live_a, conn_mo, json.dumps({"type": "chat.send", "text": f"a{i}"}))
        await send(b, live_b, conn_ana, json.dumps({"type": "chat.send", "text": f"b{i}", "ref": f"r{i}"}))
    await send(b, live_b, conn_ana, '{"type": "question.ask", "text": "Why?", "ref": "q"}')
    assert ana.reply("q")["type"] == "ack"
    question = await mo.until(lambda: mo.state.view["questions"])
    vote = {"type": "question.vote", "question_id": question[0]["id"]}
    await send(a, live_a, conn_mo, json.dumps(vote))
    await send(b, live_b, conn_ana, json.dumps({**vote, "ref": "v1"}))
    await send(b, live_b, conn_ana, json.dumps({**vote, "ref": "v2"}))
    assert ana.reply("v2")["code"] == "already_voted"
    await ana.until(lambda: ana.state.seq == mo.state.seq and mo.state.view["questions"][0]["votes"] == 2)
    expected = [x for i in range(5) for x in (f"a{i}", f"b{i}")]
    assert mo.chat() == ana.chat() == expected
    assert [r["ref"] for r in ana.messages if r["type"] == "ack"] == ["r0", "r1", "r2", "r3", "r4", "q", "v1"]
    assert ana.state.view["questions"] == mo.state.view["questions"]
    # Both see each other in presence, counted by the owner across processes.
    await ana.until(lambda: ana.state.view["count"] == 2)


async def test_moderator_commands_are_checked_by_the_owner(database: Database, services) -> None:  # noqa: ANN001
    """A participant on a replica cannot lock the room: the owner refuses and the error comes back."""
    a, b, _ = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    await connect(a, sid, mo)
    live_b, conn_ana = await connect(b, sid, ana)
    await send(b, live_b, conn_ana, '{"type": "room.lock", "locked": true, "ref": "x"}')
    assert ana.reply("x")["code"] == "forbidden"
    assert not live_b.room.locked


async def test_resume_on_another_process_gets_exactly_the_missed_events(database: Database, services) -> None:  # noqa: ANN001
    """A client of process A that reconnects to process C resumes from its last seq without a snapshot."""
    a, b, c = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    live_a, conn_mo = await connect(a, sid, mo)
    live_b, conn_ana = await connect(b, sid, ana)
    await send(b, live_b, conn_ana, '{"type": "chat.send", "text": "before"}')
    await ana.until(lambda: ana.chat() == ["before"])
    await b.leave(live_b, conn_ana)
    epoch, last_seq = ana.state.epoch, ana.state.seq
    for i in range(3):
        await send(a, live_a, conn_mo, json.dumps({"type": "chat.send", "text": f"missed {i}"}))
    await c.room(sid)
    live_c = c.rooms[sid]
    await asyncio.wait_for(live_c.ready.wait(), 10)
    again = Viewer(ANA)
    again.state = ClientState(ANA.person_id, {"epoch": epoch, "seq": last_seq, "snapshot": ana.state.view})
    resume = protocol.Resume(type="resume", epoch=epoch, last_seq=last_seq)
    await c.join(live_c, ANA, again.outbox(), resume)
    resumed = await again.until(lambda: next((m for m in again.messages if m["type"] == "resumed"), None))
    assert resumed["missed"] >= 3
    await again.until(lambda: again.chat() == ["before", "missed 0", "missed 1", "missed 2"])
    assert not any(m["type"] == "welcome" for m in again.messages)


async def test_owner_gone_another_takes_over_under_a_new_epoch(database: Database, services) -> None:  # noqa: ANN001
    """When the owner stops renewing its lease another process rebuilds the room from the database; its clients
    get a fresh snapshot with everything committed and can go on chatting."""
    a, b, _ = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    live_a, conn_mo = await connect(a, sid, mo)
    live_b, conn_ana = await connect(b, sid, ana)
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "one"}')
    await ana.until(lambda: ana.chat() == ["one"])
    old_epoch = ana.state.epoch
    # The owner freezes: its heartbeat stops and its lease runs out (as when it is killed).
    for task in a._tasks:
        task.cancel()
    await ana.until(lambda: live_b.owner and ana.state.epoch != old_epoch, timeout_s=15)
    assert ana.chat() == ["one"]
    await send(b, live_b, conn_ana, '{"type": "chat.send", "text": "two", "ref": "t"}')
    assert ana.reply("t")["type"] == "ack"
    assert ana.chat() == ["one", "two"]
    # Presence is rebuilt by the new owner: Ana (through it); the frozen process's moderator is not counted.
    await ana.until(lambda: ana.state.view["count"] == 1)
    # The old owner wakes up and tries to write: the database refuses (fenced by the new epoch) and it follows.
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "stale", "ref": "s"}')
    assert mo.reply("s")["code"] == "room_moved"
    assert not live_a.owner
    await mo.until(lambda: mo.state.epoch == ana.state.epoch and mo.chat() == ["one", "two"])


async def test_malformed_forwarded_messages_get_an_error_and_change_nothing(database: Database, services) -> None:  # noqa: ANN001
    """Bad JSON, unknown types, missing fields and forged state on the bus are refused; a forwarded command that is
    not valid gets its error back; the room goes on."""
    a, b, _ = services
    sid = seed(database)
    mo = Viewer(MODERATOR)
    live_a, conn_mo = await connect(a, sid, mo)
    seq = live_a.room.log.seq
    inbox = await b.bus.subscribe(cluster.node_topic("intruder"))
    topic = cluster.owner_topic(sid)
    for payload in (
        b"not json",
        b'{"t": "nonsense"}',
        b'{"t": "join", "node": "x"}',
        json.dumps({"t": "command", "node": "intruder", "id": "1", "actor": {"person_id": "2"}, "text": "{}"}).encode(),
        json.dumps(
            {
                "t": "command",
                "node": "intruder",
                "id": "2",
                "actor": {"person_id": 2, "name": "Ana", "role": "participant"},
                "text": '{"type": "chat.send"}',
            }
        ).encode(),
    ):
        b.bus.publish(topic, payload)
    b.bus.publish(cluster.room_topic(sid), b"S" + b"0" * 32 + b'{"t": "state", "forged": true}')
    replies = []
    async with asyncio.timeout(10):
        async for item in inbox:
            replies.append(json.loads(item.payload)["message"])
            if len(replies) == 2:
                break
    assert [r["code"] for r in replies] == ["bad_request", "invalid"]
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "still here"}')
    await mo.until(lambda: mo.chat() == ["still here"])
    assert live_a.room.log.seq > seq
    inbox.close()


async def test_a_state_of_another_version_is_refused_and_the_replica_keeps_its_room(
    database: Database,
    services,  # noqa: ANN001
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A state transfer signed with the deployment's key but of another version (a process of another release), or
    not of the schema, is refused with the reason in the log; the replica keeps its room and goes on following."""
    import hashlib
    import hmac

    from server.rooms import transfer

    a, b, _ = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    live_a, conn_mo = await connect(a, sid, mo)
    live_b, _ = await connect(b, sid, ana)
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "kept"}')
    await ana.until(lambda: ana.chat() == ["kept"])
    room_b, seq = live_b.room, live_b.room.log.seq
    body = json.loads(transfer.seal_state(b"k" * 32, a.node, live_a.room)[33:])
    for changed in ({**body, "v": 2, "seq": 1}, {**body, "chat": "everything"}):
        raw = json.dumps(changed).encode()
        a.bus.publish(cluster.room_topic(sid), b"S" + hmac.new(b"k" * 32, raw, hashlib.sha256).digest() + raw)
    await a.bus.flushed()
    await send(a, live_a, conn_mo, '{"type": "chat.send", "text": "after"}')
    await ana.until(lambda: ana.chat() == ["kept", "after"])
    assert live_b.room is room_b and live_b.synced and live_b.room.log.seq > seq  # (a presence flush may come too)
    assert [m.text for m in live_b.room.chat] == ["kept", "after"]
    warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert any("version 2; this process reads version 1" in w for w in warnings)
    assert any("does not fit version 1" in w for w in warnings)


async def test_dead_process_people_leave_and_its_visits_close(database: Database, services) -> None:  # noqa: ANN001
    """A process that stops its heartbeat: the owner drops its people from presence, the survivors close its visits
    at their last heartbeat."""
    a, b, _ = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    await connect(a, sid, mo)
    await connect(b, sid, ana)
    await mo.until(lambda: mo.state.view["count"] == 2)
    for task in b._tasks:
        task.cancel()  # b stops: no more heartbeats, no more visit refreshes
    await mo.until(lambda: mo.state.view["count"] == 1, timeout_s=15)

    def ana_visit(db):  # noqa: ANN001, ANN202
        from sqlmodel import select

        return db.exec(select(AttendanceVisit).where(AttendanceVisit.person_id == ANA.person_id)).one()

    async with asyncio.timeout(10):
        while (visit := database.run_read(ana_visit)).left_at is None:
            await asyncio.sleep(0.1)
    assert visit.left_at == visit.last_seen_at
    assert not isinstance(a.rooms[sid], SharedRoom) or a.rooms[sid].owner


async def test_rate_limits_hold_across_processes(database: Database, services) -> None:  # noqa: ANN001
    """One person with a connection on each of two processes gets one chat burst, not two: the owner keeps
    each person's buckets, and every command passes through it."""
    a, b, _ = services
    sid = seed(database)
    mo = Viewer(MODERATOR)
    await connect(a, sid, mo)
    on_a, on_b = Viewer(ANA), Viewer(ANA)
    live_a, conn_a = await connect(a, sid, on_a)
    live_b, conn_b = await connect(b, sid, on_b)
    answers = []
    for i in range(4):  # a burst of 5 allowed per person; each connection alone would allow 5 more
        for service, live, conn, viewer, where in ((a, live_a, conn_a, on_a, "a"), (b, live_b, conn_b, on_b, "b")):
            ref = f"{where}{i}"
            await send(service, live, conn, json.dumps({"type": "chat.send", "text": ref, "ref": ref}))
            reply = viewer.reply(ref)
            answers.append(reply["type"] if reply["type"] == "ack" else reply["code"])
    assert answers.count("ack") == 5
    assert answers.count("rate_limited") == 3
    await mo.until(lambda: len(mo.chat()) == 5)


async def test_rate_limits_hold_when_the_room_moves_to_another_owner(database: Database, services) -> None:  # noqa: ANN001
    """The person's buckets live in Redis: a new owner (after a takeover) does not give a fresh chat burst."""
    a, b, c = services
    sid = seed(database)
    mo, ana = Viewer(MODERATOR), Viewer(ANA)
    await connect(a, sid, mo)
    live_b, conn_b = await connect(b, sid, ana)
    for i in range(5):  # the whole burst, through the owner a
        await send(b, live_b, conn_b, json.dumps({"type": "chat.send", "text": f"x{i}", "ref": f"x{i}"}))
        assert ana.reply(f"x{i}")["type"] == "ack"
    emptied = time.monotonic()
    old_epoch = ana.state.epoch
    for task in a._tasks:
        task.cancel()  # the owner freezes; b or c takes the room over
    await ana.until(lambda: ana.state.epoch != old_epoch, timeout_s=15)
    again = Viewer(ANA)  # a new connection on c: its own buckets are fresh, the person's are not
    live_c, conn_c = await connect(c, sid, again)
    await asyncio.wait_for(live_c.ready.wait(), 10)
    for i in range(5):
        await send(c, live_c, conn_c, json.dumps({"type": "chat.send", "text": f"m{i}", "ref": f"m{i}"}))
    acks = sum(again.reply(f"m{i}")["type"] == "ack" for i in range(5))
    # Only what the bucket refilled meanwhile (a chat line per 2 s; the takeover waits for the lease), not a new burst.
    assert acks <= int((time.monotonic() - emptied) / RATES["chat"].per_s)
    assert acks < 5


async def test_one_visit_per_person_across_processes(database: Database, services) -> None:  # noqa: ANN001
    """A person connected through two processes has one visit, open until their last connection anywhere ends."""
    from sqlmodel import select

    a, b, _ = services
    sid = seed(database)
    await connect(a, sid, Viewer(MODERATOR))
    live_a, conn_a = await connect(a, sid, Viewer(ANA))
    live_b, conn_b = await connect(b, sid, Viewer(ANA))

    def visits(db):  # noqa: ANN001, ANN202
        return db.exec(select(AttendanceVisit).where(AttendanceVisit.person_id == ANA.person_id)).all()

    assert len(database.run_read(visits)) == 1
    await a.leave(live_a, conn_a)  # her tab on b is still open
    (visit,) = database.run_read(visits)
    assert visit.left_at is None
    await b.leave(live_b, conn_b)
    (visit,) = database.run_read(visits)
    assert visit.left_at is not None


async def test_connection_cap_holds_across_processes(database: Database, services) -> None:  # noqa: ANN001
    """At most five connections per person and room, counted over all processes; a freed one can be reused."""
    from realtime.room import RoomError
    from server.rooms.service import MAX_CONNECTIONS_PER_PERSON

    a, b, c = services
    sid = seed(database)
    await connect(a, sid, Viewer(MODERATOR))
    held = []
    for i in range(MAX_CONNECTIONS_PER_PERSON):
        service = (a, b)[i % 2]
        held.append((service, *await connect(service, sid, Viewer(ANA))))
    live_c = await c.room(sid)
    await asyncio.wait_for(live_c.ready.wait(), 10)
    with pytest.raises(RoomError) as refused:
        await c.join(live_c, ANA, Viewer(ANA).outbox(), HELLO)
    assert refused.value.code == "too_many_connections"
    service, live, connection = held[0]
    await service.leave(live, connection)
    await connect(c, sid, Viewer(ANA))
