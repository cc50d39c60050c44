"""The room service: live rooms in this process, their connections, and the order of work for each
command — decide, commit the durable events, apply, broadcast.

One ``asyncio.Lock`` per room keeps that order total: events reach every connection in ``seq``
order, and nothing is broadcast before it is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from realtime import protocol
from realtime.fanout import Outbox, SlowConsumer, text_frame
from realtime.limits import ConnectionLimits
from realtime.log import Event
from realtime.room import Actor, Role, Room, RoomError
from realtime.views import render, snapshot
from server import attendance
from server.rooms import store
from server.rooms.cafe import CafeDriver
from server.rooms.media import MediaService
from server.rooms.visits import VisitBook
from server.settings import Settings
from server.storage.db import Database
from server.storage.grouped import Grouped
from server.storage.models import Person

log = logging.getLogger("forumlive.rooms")

# Connections one person may hold to one room (tabs, devices).
MAX_CONNECTIONS_PER_PERSON = 5
# How often the attendance retention setting is applied while running.
RETENTION_EVERY_S = 6 * 3600
# Arrivals and departures are announced together at most this often (see Room.flush_presence).
PRESENCE_FLUSH_S = 0.5
# Presence goes to everyone present; in a large room it is announced less often, so that an audience
# arriving by the thousand costs about this many deliveries a second rather than one per person per flush.
PRESENCE_DELIVERIES_PER_S = 2_000


class CloseCode(IntEnum):
    """WebSocket close codes, chosen in this one place."""

    GOING_AWAY = 1001
    POLICY = 1008  # e.g. a foreign Origin
    TOO_BIG = 1009
    INTERNAL = 1011
    TRY_AGAIN = 1013  # the room is not reachable right now (another process owns it and did not answer)
    BAD_START = 4400  # the first message was not hello or resume
    NOT_SIGNED_IN = 4401
    FORBIDDEN = 4403  # removed, locked, closed room
    NOT_FOUND = 4404
    SLOW_CONSUMER = 4408  # fell too far behind: resume
    IDLE = 4409  # no heartbeat
    TOO_MANY_CONNECTIONS = 4429


@dataclass(eq=False)
class Connection:
    actor: Actor
    outbox: Outbox
    visit_id: int
    limits: ConnectionLimits = field(init=False)

    def __post_init__(self) -> None:
        self.limits = ConnectionLimits(staff=self.actor.is_staff)


@dataclass(eq=False)
class LiveRoom:
    room: Room
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connections: set[Connection] = field(default_factory=set)
    presence_task: asyncio.Task[None] | None = None
    # The same connections by person: a join checks the person's count, and an audience joins by the thousand.
    by_person: dict[int, set[Connection]] = field(default_factory=dict)

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.by_person.setdefault(connection.actor.person_id, set()).add(connection)

    def discard(self, connection: Connection) -> None:
        self.connections.discard(connection)
        mine = self.by_person.get(connection.actor.person_id)
        if mine is not None:
            mine.discard(connection)
            if not mine:
                del self.by_person[connection.actor.person_id]

    def of_person(self, person_id: int) -> list[Connection]:
        return list(self.by_person.get(person_id, ()))


class RoomService:
    """Live rooms of this process, loaded from the database on first use."""

    # Commits check that this process still owns the room (see SharedRoomService); one process always does.
    fenced = False

    def __init__(
        self, database: Database, settings: Settings | None = None, presence_flush_s: float = PRESENCE_FLUSH_S
    ) -> None:
        self.database = database
        self.visits = VisitBook(database)  # attendance visits, written many per transaction
        # Who is connecting and their role, read for many arrivals at once.
        self._actors: Grouped[tuple[int, int], tuple[Person, Role] | None] = Grouped(
            lambda wanted: database.read(store.actors_of, wanted), name="room arrivals"
        )
        self.media = MediaService(settings or Settings(), self.reply)
        self.cafes = CafeDriver(self)  # knowledge cafés: round clocks, people's profiles for seating
        self.retention_days = (settings or Settings()).attendance_retention_days
        self._retention: asyncio.Task[None] | None = None
        self.presence_flush_s = presence_flush_s
        self.rooms: dict[int, LiveRoom] = {}
        self._loading = asyncio.Lock()
        self._heartbeat: asyncio.Task[None] | None = None
        # For /metrics: events delivered to this process's connections, and connections cut for falling behind.
        self.events_delivered = 0
        self.slow_consumers = 0

    async def start(self) -> None:
        closed = await self.database.write(attendance.close_stale_visits)
        if closed:
            log.info("closed %d attendance visits left open by the last run", closed)
        self._heartbeat = asyncio.create_task(self._touch_visits())
        self._retention = asyncio.create_task(self._purge_old_visits()) if self.retention_days else None

    async def _purge_old_visits(self) -> None:
        """Apply the attendance retention setting now and every ``RETENTION_EVERY_S``."""
        while True:
            cutoff = store.to_time(time.time() - (self.retention_days or 0) * 86400)
            try:
                deleted = await self.database.write(attendance.purge_visits, cutoff)
                if deleted:
                    log.info(
                        "deleted %d attendance visits older than %s days (aggregates kept)",
                        deleted,
                        self.retention_days,
                    )
            except Exception:
                log.exception("could not apply the attendance retention")
            await asyncio.sleep(RETENTION_EVERY_S)

    async def stop(self) -> None:
        await self.media.stop()
        await self.cafes.stop()
        for live in self.rooms.values():
            if live.presence_task is not None:
                live.presence_task.cancel()
        if self._retention is not None:
            self._retention.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for live in list(self.rooms.values()):
            for connection in list(live.connections):
                await connection.outbox.close(CloseCode.GOING_AWAY, "server restarting; resume shortly")

    async def room(self, session_id: int) -> LiveRoom:
        """The live room of a session, rebuilt from the database if this process has not got it.

        Raises:
            NotFound: no such session.
        """
        live = self.rooms.get(session_id)
        if live is not None:
            return live
        async with self._loading:
            live = self.rooms.get(session_id)
            if live is None:
                live = await self._load(session_id)
                self.rooms[session_id] = live
        return live

    async def _load(self, session_id: int) -> LiveRoom:
        """Build the room of a session this process has not got (under ``_loading``).

        Raises:
            NotFound: no such session.
        """
        return LiveRoom(await self.database.read(store.load_room, session_id))

    # Connections ------------------------------------------------------------------------------------

    async def actor_of(self, person_id: int, session_id: int) -> tuple[Person, Role] | None:
        """The signed-in person and their role in the session (``None``: no such person)."""
        return await self._actors((person_id, session_id))

    async def join(
        self,
        live: LiveRoom,
        actor: Actor,
        outbox: Outbox,
        start: protocol.Hello | protocol.Resume,
        channel: str = "live",
    ) -> Connection:
        """Admit a connection, record the visit (on ``channel``: ``live``, or ``lite`` for the lite socket),
        greet it (snapshot or missed events) and tell the room.

        Raises:
            RoomError: not admitted (``removed``, ``room_locked``, ``room_closed``, ``too_many_connections``).
        """
        live.room.admit(actor)
        if len(live.of_person(actor.person_id)) >= MAX_CONNECTIONS_PER_PERSON:
            raise RoomError("too_many_connections", f"at most {MAX_CONNECTIONS_PER_PERSON} connections per person")
        visit_id = await self.visits.open(live.room.session_id, actor.person_id, channel, store.to_time(time.time()))
        connection = Connection(actor, outbox, visit_id)
        async with live.lock:
            live.room.admit(actor)  # the room may have changed while the visit was written
            live.room.connect(actor)
            live.add(connection)
            outbox.start()
            self._greet(live.room, connection, start)
            self._schedule_presence(live)
        return connection

    def presence_delay_s(self, live: LiveRoom) -> float:
        """How long presence changes gather before they are announced: longer as the audience grows."""
        return max(self.presence_flush_s, self.present(live) / PRESENCE_DELIVERIES_PER_S)

    def _schedule_presence(self, live: LiveRoom) -> None:
        if live.presence_task is None or live.presence_task.done():
            live.presence_task = asyncio.create_task(self._flush_presence(live))

    async def _flush_presence(self, live: LiveRoom) -> None:
        await asyncio.sleep(self.presence_delay_s(live))
        async with live.lock:
            self._broadcast(live, live.room.flush_presence())

    def _greet(self, room: Room, connection: Connection, start: protocol.Hello | protocol.Resume) -> None:
        you = {"id": connection.actor.person_id, "name": connection.actor.name, "role": connection.actor.role.value}
        missed = room.log.since(start.epoch, start.last_seq) if isinstance(start, protocol.Resume) else None
        if missed is None:
            reason = "resync" if isinstance(start, protocol.Resume) else "join"
            message = protocol.welcome(you, room.log.epoch, room.log.seq, snapshot(room, connection.actor), reason)
            connection.outbox.put(protocol.dumps(message))
            return
        connection.outbox.put(protocol.dumps(protocol.resumed(room.log.epoch, room.log.seq, len(missed))))
        for event in missed:
            connection.outbox.put(render(room, event, connection.actor))

    async def leave(self, live: LiveRoom, connection: Connection) -> None:
        async with live.lock:
            if connection not in live.connections:
                return
            live.discard(connection)
            events = live.room.disconnect(connection.actor.person_id)
            self._broadcast(live, events)
            self._schedule_presence(live)
            last_one = not live.of_person(connection.actor.person_id)
        await self.media.leave(live.room.session_id, connection)
        if last_one:
            await self.visits.close(connection.visit_id, store.to_time(time.time()))

    # Commands ---------------------------------------------------------------------------------------

    async def handle(self, live: LiveRoom, connection: Connection, command: protocol.Command) -> None:
        """Run one command: rate limit, decide, commit, apply, broadcast; errors go back to the sender."""
        wait = connection.limits.take(command.type)
        if wait:
            self.reply(
                connection, protocol.error("rate_limited", f"too fast; try again in {wait:.1f} s", command.ref, wait)
            )
            return
        async with live.lock:
            now = time.time()
            try:
                events = await self._commit_and_send(live, live.room.decide(connection.actor, command, now), now)
            except RoomError as exc:
                self.reply(connection, protocol.error(exc.code, exc.message, command.ref))
                return
            except Exception:
                log.exception("could not commit %s in session %s", command.type, live.room.session_id)
                self.reply(connection, protocol.error("internal", "not saved; please try again", command.ref))
                return
            if command.ref is not None:
                self.reply(connection, protocol.ack(command.ref))
            removed = [e.data["person_id"] for e in events if e.kind == "participant.removed"]
        for person_id in removed:
            for other in live.of_person(person_id):
                asyncio.create_task(other.outbox.close(CloseCode.FORBIDDEN, "removed by a moderator"))

    async def publish_captions(
        self,
        session_id: int,
        speaker: dict[str, object],
        finals: list[tuple[float, float, str, float]],
        partial: tuple[float, float, str] | None,
        lag_s: float | None = None,
    ) -> None:
        """Send a caption update into a room: finals are committed first, partials are not stored.
        ``lag_s`` (how far the captions run behind the speech) travels with the partial caption."""
        live = await self.room(session_id)
        async with live.lock:
            events = live.room.decide_captions(speaker, finals, partial, lag_s)
            await self._commit_and_send(live, events, time.time())

    async def _commit_and_send(self, live: LiveRoom, events: list[Event], now: float) -> list[Event]:
        """Commit the durable events, then apply and broadcast all of them (caller holds the room's lock).

        Raises:
            RoomError: the database refused (e.g. a second vote); nothing was applied or sent.
        """
        if any(e.durable for e in events):
            await self.database.write(store.commit, live.room, events, now, self.fenced)
        live.room.apply(events)
        self._broadcast(live, events)
        await self.media.on_events(live, events)
        return events

    def reply(self, connection: Connection, message: dict[str, object]) -> None:
        with contextlib.suppress(SlowConsumer):
            connection.outbox.put(protocol.dumps(message))

    def _broadcast(self, live: LiveRoom, events: Iterable[Event], skip: Connection | None = None) -> None:
        events = list(events)
        if not events:
            return
        self.cafes.on_events(live, events)
        self.events_delivered += len(events)
        # Each event's text for each viewer class, and its bytes on the wire, are built once for everyone.
        wires: dict[str, bytes] = {}
        for connection in list(live.connections):
            if connection is skip or connection.outbox.closed:
                continue
            try:
                for event in events:
                    frame = render(live.room, event, connection.actor)
                    wire = wires.get(frame)
                    if wire is None:
                        wire = wires[frame] = text_frame(frame)
                    connection.outbox.put(frame, wire)
            except SlowConsumer:
                self.slow_consumers += 1
                asyncio.create_task(connection.outbox.close(CloseCode.SLOW_CONSUMER, "fell behind; resume"))

    def present(self, live: LiveRoom) -> int:
        """People present in a room now."""
        return len(live.room.members)

    def owns(self, live: LiveRoom) -> bool:
        """Whether this process runs the room's state machine (with one process: always)."""
        return True

    async def _touch_visits(self) -> None:
        while True:
            await asyncio.sleep(attendance.HEARTBEAT_S)
            visit_ids = [c.visit_id for live in self.rooms.values() for c in live.connections]
            try:
                await self.database.write(attendance.touch_visits, visit_ids, store.to_time(time.time()))
            except Exception:
                log.exception("could not refresh attendance heartbeats")
