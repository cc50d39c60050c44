"""Rooms shared by several processes through Redis, behind the same interface as ``RoomService``.

One process owns a room: it holds the room's lease in Redis and does what a single process does —
decide, commit, apply, broadcast — and also publishes each batch of applied events on the room's
topic. Every other process with clients in the room keeps a replica: it applies the owner's events in
``seq`` order (the next one only; a gap or another epoch makes it ask the owner for its state) and
fans them out to its own connections, so snapshots and resume work on any process. Their clients'
commands are forwarded to the owner with a reply id, and their arrivals and departures too: presence
is counted by the owner, per process.

When the owner dies its lease runs out and the first process to claim it rebuilds the room from the
database under a new epoch (as a restart does), tells the others, and everyone re-announces presence.
Committed events travel in the database outbox too (``server.rooms.outbox``): each event batch the owner
commits is a row until Redis has it, and a new owner publishes the rows its predecessor left before its
own state, so replicas of the old epoch still get them, in order.
A process whose heartbeat key expires is dead: owners drop its people from presence, and the survivors
close its visits at their last heartbeat (each process refreshes its visits every heartbeat).

See ``server.rooms.cluster`` for the messages and keys, and docs/architecture.md for the why.

This module is longer than most (about 780 lines): ownership, replication, forwarding and presence
across processes share the room's lock and state and only make sense together. Its seams, should it
grow: the owner's side (``_read_commands`` and what it calls) and the replica's (``_read_room``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from realtime import protocol
from realtime.bus import RETRYABLE, BusClosed, Gap, GapReason, RedisBus, Subscription
from realtime.fanout import Outbox
from realtime.limits import BUCKET_OF, RATES, STAFF_RATES, ConnectionLimits
from realtime.log import Event
from realtime.room import Actor, Room, RoomError
from realtime.views import render
from server import attendance
from server.errors import NotFound
from server.rooms import cluster, outbox, store, transfer
from server.rooms.cluster import (
    CaptionUpdate,
    EventBatch,
    ForwardedCommand,
    MalformedMessage,
    PresenceJoin,
    PresenceLeave,
    PresenceSync,
    StateRequest,
    SyncRequest,
    WireActor,
)
from server.rooms.service import MAX_CONNECTIONS_PER_PERSON, CloseCode, Connection, LiveRoom, RoomService
from server.settings import Settings
from server.storage.db import Database
from server.storage.models import Session

log = logging.getLogger("forumlive.cluster")

# A forwarded command unanswered after this long gets an error (the owner may be changing).
FORWARD_TIMEOUT_S = 10.0
# A replica waits this long for the owner's state before a connection is turned away (1013, try again);
# longer than a lease and a heartbeat (10 + 5 s by default), the most a takeover takes.
READY_TIMEOUT_S = 30.0
# Visits not refreshed for this many heartbeats belong to a dead process.
STALE_HEARTBEATS = 3
# Outbox rows whose messages Redis has taken are deleted together: this often (s), or at once when this many wait.
OUTBOX_DELETE_S = 0.2
OUTBOX_DELETE_BATCH = 256
# Epochs a replica remembers having left: a late batch of one of them is ignored (the state after it covers it).
PAST_EPOCHS = 16


@dataclass(eq=False)
class SharedRoom(LiveRoom):
    """A live room of this process in a cluster: owned (``owner``) or a replica waiting for/holding state."""

    owner: bool = False
    synced: bool = False  # a replica holds the owner's state and is applying its events
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    people: dict[str, Counter[int]] = field(default_factory=dict)  # owner: connections per process per person
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    commands: asyncio.Task[None] | None = None  # owner: reads the owner topic
    claiming: asyncio.Lock = field(default_factory=asyncio.Lock)  # one claim at a time (start-up and heartbeat)
    limits: dict[int, ConnectionLimits] = field(default_factory=dict)  # owner, while Redis is unreachable
    claim_after: float = 0.0  # a replica leaves the lease alone until then (monotonic s): see _read_room
    past_epochs: list[str] = field(default_factory=list)  # epochs this process has left (newest last)


class SharedRoomService(RoomService):
    """Live rooms shared with other processes through Redis (``FORUMLIVE_REDIS_URL``)."""

    fenced = True

    def __init__(self, database: Database, settings: Settings, bus: RedisBus | None = None) -> None:
        super().__init__(database, settings)
        assert settings.redis_url, "SharedRoomService needs FORUMLIVE_REDIS_URL"
        self.node = cluster.new_node_id()
        self.bus = bus or RedisBus(settings.redis_url)
        self.registry = cluster.Registry(
            settings.redis_url, self.node, settings.cluster_lease_s, settings.cluster_heartbeat_s
        )
        self.heartbeat_s = settings.cluster_heartbeat_s
        self.lease_s = settings.cluster_lease_s
        self._secret = settings.secret_key.encode()
        self._waiting: dict[str, asyncio.Future[dict[str, object]]] = {}
        self._dead: set[str] = set()  # processes whose heartbeat expired (their presence is ignored)
        self.bus_gaps: Counter[str] = Counter()  # for /metrics: gaps seen on the rooms' topics, by reason
        # This process's connections as counted in Redis: session and key.
        self._counted: dict[Connection, tuple[int, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._counter = 0
        # The database outbox: rows this process published (or took over) and has not deleted yet, those of them
        # Redis has taken (deleted by _delete_published), and the table's rows of all processes at the last count.
        self.outbox_waiting: set[int] = set()
        self._outbox_taken: set[int] = set()
        self._outbox_wake = asyncio.Event()
        self.outbox_rows = 0

    # Life of the process -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        with contextlib.suppress(Exception):
            await self.registry.beat()
        # Other processes' visits are theirs: only those left by a dead process (stale) are closed.
        await self._close_stale_visits()
        inbox = await self.bus.subscribe(cluster.node_topic(self.node))
        self._tasks.append(asyncio.create_task(self._read_inbox(inbox)))
        self._tasks.append(asyncio.create_task(self._keep_alive()))
        self._tasks.append(asyncio.create_task(self._delete_published()))
        if self.retention_days:
            self._retention = asyncio.create_task(self._purge_old_visits())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for live in list(self.rooms.values()):
            assert isinstance(live, SharedRoom)
            for task in [*live.tasks, *([live.commands] if live.commands else [])]:
                task.cancel()
        await super().stop()
        for session_id, live in list(self.rooms.items()):
            if isinstance(live, SharedRoom) and live.owner:
                with contextlib.suppress(Exception):
                    await self.registry.release(session_id)  # the next owner need not wait for the lease
        with contextlib.suppress(Exception):
            await self.registry.gone()
        await self.bus.close()  # pending messages get their 2 s; rows of those that do not stay for the next owner
        await asyncio.sleep(0)  # the callbacks of the messages Redis took in that time
        with contextlib.suppress(Exception):
            await self._delete_taken()
        await self.registry.close()

    async def _keep_alive(self) -> None:
        """Every heartbeat: say we are alive, refresh our visits, keep or take leases, drop dead processes."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                # Leases first: a slow database must not cost this process its rooms.
                await self.registry.beat()
                for live in list(self.rooms.values()):
                    assert isinstance(live, SharedRoom)
                    await self._claim(live)
                await self._drop_dead_processes()
                await self.registry.refresh_connections(
                    [(sid, c.actor.person_id, key) for c, (sid, key) in self._counted.items()]
                )
                visit_ids = [c.visit_id for live in self.rooms.values() for c in live.connections]
                await self.database.write(attendance.touch_visits, visit_ids, store.to_time(time.time()))
                await self._close_stale_visits()
                self.outbox_rows = await self.database.read(outbox.count)
            except RETRYABLE as exc:
                log.warning("heartbeat failed (%s); trying again in %.1f s", exc, self.heartbeat_s)
            except Exception:
                log.exception("heartbeat failed; trying again in %.1f s", self.heartbeat_s)

    async def _close_stale_visits(self) -> None:
        """Close the room visits of processes gone (not refreshed for three heartbeats) at their last heartbeat.

        Visits reported by other pages (lite, recording, transcript) are left open as with one process.
        """
        cutoff = store.to_time(time.time()) - timedelta(seconds=STALE_HEARTBEATS * self.heartbeat_s)
        closed = await self.database.write(attendance.close_stale_visits, cutoff, "live")
        if closed:
            log.info("closed %d attendance visits of processes gone since %s", closed, cutoff)

    async def _drop_dead_processes(self) -> None:
        """Owner: people connected through a process whose heartbeat expired leave presence, and its presence
        messages are ignored until it beats again (a process stuck in its heartbeat may still be reading)."""
        owned = [live for live in self.rooms.values() if isinstance(live, SharedRoom) and live.owner]
        nodes = {node for live in owned for node in live.people} - {self.node}
        dead = await self.registry.dead(nodes | self._dead)
        revived, self._dead = self._dead - dead, dead
        for live in owned:
            gone = dead & live.people.keys()
            if not gone and not revived:
                continue
            async with live.lock:
                for node in gone:
                    log.info("process %s is gone: its people leave room %s", node, live.room.session_id)
                    self._set_people(live, node, Counter(), {})
                # A process also looks dead when Redis lost its key (a restart): once it beats again, the living
                # say again who is connected through them.
                self._publish(live, SyncRequest(t="sync?", node=self.node, epoch=live.room.log.epoch))

    # Rooms -------------------------------------------------------------------------------------------

    async def _load(self, session_id: int) -> LiveRoom:
        """This process's copy of a session's room: owned, or a replica of the owner's (``room()`` calls it).

        Raises:
            NotFound: no such session.
        """
        exists = await self.database.read(lambda db: db.get(Session, session_id) is not None)
        if not exists:
            raise NotFound(f"no session with id {session_id}")
        live = SharedRoom(Room(session_id))
        events = await self.bus.subscribe(cluster.room_topic(session_id))
        live.tasks.append(asyncio.create_task(self._read_room(live, events)))
        self.rooms[session_id] = live  # before claiming: a claim that fails now is retried by the heartbeat
        try:
            await self._claim(live)
        except Exception:  # noqa: BLE001 - tried again every heartbeat
            log.warning("could not claim room %s yet; trying again at the next heartbeat", session_id)
        return live

    async def _claim(self, live: SharedRoom) -> None:
        """Take or keep the room's lease; become its owner, or step down when another process has it."""
        async with live.claiming:
            await self._claim_now(live)

    async def _claim_now(self, live: SharedRoom) -> None:
        session_id = live.room.session_id
        if not live.owner and time.monotonic() < live.claim_after:
            if not live.synced:
                self._send_to_owner(live, StateRequest(t="state?", node=self.node))
            return
        if await self.registry.claim(session_id):
            if not live.owner:
                await self._become_owner(live)
        elif live.owner:
            log.warning("room %s: another process holds the lease now; following it", session_id)
            self._follow(live)
        elif not live.synced:
            self._send_to_owner(live, StateRequest(t="state?", node=self.node))

    def _follow(self, live: SharedRoom) -> None:
        """Stop owning the room (another process has it) and ask the new owner for its state."""
        live.owner = live.synced = False
        if live.commands is not None:
            live.commands.cancel()
            live.commands = None
        self._send_to_owner(live, StateRequest(t="state?", node=self.node))

    async def _become_owner(self, live: SharedRoom) -> None:
        session_id = live.room.session_id
        # Listen first: a command forwarded by the old owner once it is refused (below) waits here, not lost.
        commands = await self.bus.subscribe(cluster.owner_topic(session_id))
        try:
            # A new epoch, as after a restart; the room's row now names it, which refuses the old owner's commits.
            # Read under the same lock: the messages of committed events that earlier owners left unpublished.
            room, left = await self.database.write(outbox.claim_room, session_id, self.node)
        except BaseException:
            commands.close()
            raise
        async with live.lock:
            live.owner = live.synced = True
            live.people = {self.node: Counter(c.actor.person_id for c in live.connections)}
            for connection in live.connections:
                room.connect(connection.actor)
            self._adopt(live, room)
            live.commands = asyncio.create_task(self._read_commands(live, commands))
            topic = cluster.room_topic(session_id)
            if left:
                log.info("room %s: publishing %d event batches an earlier owner left", session_id, len(left))
            for row_id, payload in left:  # before the state: replicas of the old epoch get them first, in order
                self._publish_row(topic, row_id, payload)
            self.bus.publish(topic, transfer.seal_state(self._secret, self.node, room))
            self._publish(live, SyncRequest(t="sync?", node=self.node, epoch=room.log.epoch))
            self._schedule_presence(live)
        live.ready.set()
        log.info("room %s: this process (%s) owns it now, epoch %s", session_id, self.node, room.log.epoch)

    def _adopt(self, live: SharedRoom, room: Room) -> None:
        """Replace the room's state (caller holds the lock) and bring this process's connections up to it."""
        old = live.room
        live.room = room
        if old.log.epoch != room.log.epoch and old.log.epoch not in live.past_epochs:
            live.past_epochs = [*live.past_epochs, old.log.epoch][-PAST_EPOCHS:]
        for connection in list(live.connections):
            missed = room.log.since(old.log.epoch, old.log.seq)
            if missed is None:
                self._greet(room, connection, protocol.Hello(type="hello"))  # a fresh snapshot
                continue
            for event in missed:
                self.reply_frame(connection, render(room, event, connection.actor))

    def reply_frame(self, connection: Connection, frame: str | None) -> None:
        if frame is None:
            return
        try:
            connection.outbox.put(frame)
        except Exception:  # noqa: BLE001 - a slow consumer: it resumes
            asyncio.create_task(connection.outbox.close(CloseCode.SLOW_CONSUMER, "fell behind; resume"))

    # Messages from the owner -------------------------------------------------------------------------

    async def _read_room(self, live: SharedRoom, subscription: Subscription) -> None:
        async for item in subscription:
            try:
                if isinstance(item, Gap):
                    self.bus_gaps[item.reason.value] += 1
                    if item.reason in (GapReason.RESET, GapReason.UNAVAILABLE):
                        # Redis lost its keys (leases too): leave the owner time to claim its rooms again, so
                        # that a restart of Redis does not move every room and resync every client.
                        live.claim_after = time.monotonic() + self.lease_s
                    if not live.owner:
                        log.info(
                            "room %s: %s gap on the bus; asking the owner for its state",
                            live.room.session_id,
                            item.reason,
                        )
                        live.synced = False
                        self._send_to_owner(live, StateRequest(t="state?", node=self.node))
                    continue
                if transfer.is_state(item.payload):
                    await self._on_state(live, transfer.open_state(self._secret, item.payload))
                    continue
                message = cluster.parse(cluster.FromOwner, item.payload)
                if message.node == self.node or live.owner:
                    continue
                if isinstance(message, SyncRequest):
                    self._sync_presence(live)
                else:
                    await self._on_events(live, message)
            except MalformedMessage as exc:
                log.warning("room %s: dropped a malformed message from the bus: %s", live.room.session_id, exc)
            except Exception:
                log.exception("room %s: could not handle a message from the owner", live.room.session_id)

    async def _on_state(self, live: SharedRoom, state: transfer.State) -> None:
        if state.node == self.node or live.owner:
            return
        room = state.room
        async with live.lock:
            if room.log.epoch in live.past_epochs:
                return  # the state of an owner this room has moved on from (its answer came late)
            current = live.room.log
            newer = room.log.epoch != current.epoch or room.log.seq > current.seq
            if live.synced and not newer:
                return
            new_epoch = room.log.epoch != current.epoch
            self._adopt(live, room)
            live.synced = True
            if new_epoch:
                self._sync_presence(live)
        live.ready.set()

    async def _on_events(self, live: SharedRoom, message: EventBatch) -> None:
        if not live.synced or not message.events:
            return
        async with live.lock:
            room = live.room
            if message.epoch in live.past_epochs:
                return  # late events of an owner since replaced: the state of its successor holds them
            if message.epoch != room.log.epoch:
                live.synced = False
                self._send_to_owner(live, StateRequest(t="state?", node=self.node))
                return
            events = [wire.event() for wire in message.events if wire.seq > room.log.seq]
            if not events:
                return  # a copy of events already applied
            if events[0].seq != room.log.seq + 1:
                log.info(
                    "room %s: missed events %d..%d; resyncing", room.session_id, room.log.seq + 1, events[0].seq - 1
                )
                live.synced = False
                self._send_to_owner(live, StateRequest(t="state?", node=self.node))
                return
            room.apply(events)
            self._broadcast(live, events)
        await self.media.on_events(live, events)

    # Messages to the owner ---------------------------------------------------------------------------

    def _send_to_owner(self, live: SharedRoom, message: cluster._Wire) -> None:
        with contextlib.suppress(BusClosed):  # shutting down: the others see this process's heartbeat stop
            self.bus.publish(cluster.owner_topic(live.room.session_id), cluster.dumps(message))

    def _publish(self, live: SharedRoom, message: cluster._Wire) -> None:
        with contextlib.suppress(BusClosed):
            self.bus.publish(cluster.room_topic(live.room.session_id), cluster.dumps(message))

    def _sync_presence(self, live: SharedRoom) -> None:
        people = [WireActor.of(c.actor) for c in live.connections]
        self._send_to_owner(live, PresenceSync(t="sync", node=self.node, people=people))

    async def _read_commands(self, live: SharedRoom, subscription: Subscription) -> None:
        """The owner's side: forwarded commands, presence, state requests and captions, in order."""
        async for item in subscription:
            if isinstance(item, Gap):
                # Presence announcements may be lost: ask every process to say again who is connected.
                self._publish(live, SyncRequest(t="sync?", node=self.node, epoch=live.room.log.epoch))
                continue
            try:
                message = cluster.parse(cluster.ToOwner, item.payload)
            except MalformedMessage as exc:
                log.warning("room %s: dropped a malformed forwarded message: %s", live.room.session_id, exc)
                self._refuse(item.payload, str(exc))
                continue
            try:
                await self._on_forwarded(live, message)
            except Exception:
                log.exception("room %s: could not handle a forwarded %s", live.room.session_id, message.t)

    def _refuse(self, payload: bytes, reason: str) -> None:
        """Tell the sender of a malformed forwarded command what was wrong, when it can be named."""
        try:
            raw = json.loads(payload)
            node, reply_id = raw["node"], raw["id"]
            if not (isinstance(node, str) and isinstance(reply_id, str)):
                return
        except Exception:  # noqa: BLE001 - nobody to answer
            return
        error = protocol.error("bad_request", f"the room could not read this command: {reason[:200]}")
        self._answer(node, reply_id, error)

    def _answer(self, node: str, reply_id: str, message: dict[str, object]) -> None:
        reply = cluster.Reply(t="reply", id=reply_id, message=message)
        self.bus.publish(cluster.node_topic(node), cluster.dumps(reply))

    async def _on_forwarded(self, live: SharedRoom, message: object) -> None:
        if isinstance(message, ForwardedCommand):
            try:
                command = protocol.parse_client(message.text)
            except protocol.ProtocolError as exc:
                self._answer(message.node, message.id, protocol.error(exc.code, exc.message, exc.ref))
                return
            if not isinstance(command, protocol.Command):
                self._answer(message.node, message.id, protocol.error("bad_request", "not a room command"))
                return
            answer = await self._execute(live, message.actor.actor(), command)
            self._answer(message.node, message.id, answer)
        elif isinstance(message, PresenceJoin | PresenceLeave | PresenceSync):
            if message.node in self._dead:
                return
            async with live.lock:
                wanted = Counter(live.people.get(message.node, Counter()))
                actors = {}
                if isinstance(message, PresenceJoin):
                    wanted[message.actor.person_id] += 1
                    actors[message.actor.person_id] = message.actor.actor()
                elif isinstance(message, PresenceLeave):
                    wanted[message.person_id] = max(0, wanted[message.person_id] - 1)
                else:
                    wanted = Counter(a.person_id for a in message.people)
                    actors = {a.person_id: a.actor() for a in message.people}
                self._set_people(live, message.node, wanted, actors)
        elif isinstance(message, StateRequest):
            async with live.lock:
                self.bus.publish(
                    cluster.room_topic(live.room.session_id), transfer.seal_state(self._secret, self.node, live.room)
                )
        elif isinstance(message, CaptionUpdate):
            await super().publish_captions(
                live.room.session_id, message.speaker, list(message.finals), message.partial, message.lag_s
            )

    def _set_people(self, live: SharedRoom, node: str, wanted: Counter[int], actors: dict[int, Actor]) -> None:
        """Make the owner count ``wanted`` connections per person through ``node`` (caller holds the lock)."""
        have = live.people.setdefault(node, Counter())
        for person_id in set(have) | set(wanted):
            for _ in range(wanted[person_id] - have[person_id]):
                actor = actors.get(person_id)
                if actor is not None:
                    live.room.connect(actor)
                    have[person_id] += 1
            for _ in range(have[person_id] - wanted[person_id]):
                self._broadcast(live, live.room.disconnect(person_id))
                have[person_id] -= 1
        live.people[node] = +have
        if not live.people[node] and node != self.node:
            del live.people[node]
        self._schedule_presence(live)

    async def _flush_presence(self, live: LiveRoom) -> None:
        await asyncio.sleep(self.presence_delay_s(live))
        async with live.lock:
            if isinstance(live, SharedRoom) and live.owner:  # only the owner announces presence
                self._broadcast(live, live.room.flush_presence())

    # Connections and commands ------------------------------------------------------------------------

    async def join(
        self,
        live: LiveRoom,
        actor: Actor,
        outbox: Outbox,
        start: protocol.Hello | protocol.Resume,
        channel: str = "live",
    ) -> Connection:
        assert isinstance(live, SharedRoom)
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await live.ready.wait()
        except TimeoutError:
            raise RoomError("room_unavailable", "the room is not reachable right now; try again") from None
        self._admit(live, actor)
        too_many = RoomError("too_many_connections", f"at most {MAX_CONNECTIONS_PER_PERSON} connections per person")
        if len(live.of_person(actor.person_id)) >= MAX_CONNECTIONS_PER_PERSON:
            raise too_many
        self._counter += 1
        key = f"{self.node}:{self._counter}"
        if not await self._count_connection(live.room.session_id, actor.person_id, key):
            raise too_many
        try:
            now = store.to_time(time.time())
            visit_id = await self.visits.open(live.room.session_id, actor.person_id, channel, now)
        except BaseException:
            await self._uncount(live.room.session_id, actor.person_id, key)
            raise
        connection = Connection(actor, outbox, visit_id)
        self._counted[connection] = (live.room.session_id, key)
        async with live.lock:
            try:
                self._admit(live, actor)
            except RoomError:
                await self._uncount(live.room.session_id, actor.person_id, self._counted.pop(connection)[1])
                raise
            live.add(connection)
            outbox.start()
            self._greet(live.room, connection, start)
            if live.owner:
                live.room.connect(actor)
                live.people.setdefault(self.node, Counter())[actor.person_id] += 1
                self._schedule_presence(live)
            else:
                self._send_to_owner(live, PresenceJoin(t="join", node=self.node, actor=WireActor.of(actor)))
        return connection

    async def _count_connection(self, session_id: int, person_id: int, key: str) -> bool:
        """The cap on a person's connections to a room, across processes (in Redis; open if Redis is away)."""
        try:
            return await self.registry.admit_connection(session_id, person_id, key, MAX_CONNECTIONS_PER_PERSON)
        except RETRYABLE as exc:
            log.warning("connection cap not checked across processes (Redis: %s)", exc)
            return True

    async def _uncount(self, session_id: int, person_id: int, key: str) -> None:
        with contextlib.suppress(*RETRYABLE):
            await self.registry.drop_connection(session_id, person_id, key)

    def _admit(self, live: SharedRoom, actor: Actor) -> None:
        try:
            live.room.admit(actor)
        except RoomError as exc:
            # A replica knows who is present from the announced roster, not from its own connections.
            if not (exc.code == "room_locked" and not live.owner and actor.person_id in live.room.roster):
                raise

    async def leave(self, live: LiveRoom, connection: Connection) -> None:
        assert isinstance(live, SharedRoom)
        async with live.lock:
            if connection not in live.connections:
                return
            live.discard(connection)
            person_id = connection.actor.person_id
            if live.owner:
                mine = live.people.setdefault(self.node, Counter())
                mine[person_id] = max(0, mine[person_id] - 1)
                self._broadcast(live, live.room.disconnect(person_id))
                self._schedule_presence(live)
            else:
                self._send_to_owner(live, PresenceLeave(t="leave", node=self.node, person_id=person_id))
            last_one = not live.of_person(person_id)
        await self.media.leave(live.room.session_id, connection)
        counted = self._counted.pop(connection, None)
        if counted is not None:
            await self._uncount(counted[0], connection.actor.person_id, counted[1])
        if last_one and not await self._connected_elsewhere(live.room.session_id, person_id):
            await self.visits.close(connection.visit_id, store.to_time(time.time()))

    async def _connected_elsewhere(self, session_id: int, person_id: int) -> bool:
        """Whether the person still has a connection to the room through another process: their visit (one row,
        shared by all their connections) then stays open, and the process of their last connection closes it."""
        try:
            return await self.registry.connections(session_id, person_id) > 0
        except RETRYABLE:
            return False  # as with one process: a visit reopened within a minute continues

    async def handle(self, live: LiveRoom, connection: Connection, command: protocol.Command) -> None:
        """Run one command here if this process owns the room, else forward it and wait for the owner's answer."""
        assert isinstance(live, SharedRoom)
        wait = connection.limits.take(command.type)
        if wait:
            self.reply(
                connection, protocol.error("rate_limited", f"too fast; try again in {wait:.1f} s", command.ref, wait)
            )
            return
        if live.owner:
            answer = await self._execute(live, connection.actor, command)
        else:
            answer = await self._forward(live, connection.actor, command)
        if answer:
            self.reply(connection, answer)

    async def _execute(self, live: SharedRoom, actor: Actor, command: protocol.Command) -> dict[str, object]:
        """Decide, commit, apply, broadcast and publish (owner only); the answer for the sender (ack, error or {})."""
        wait = await self._take_token(live, actor, command.type)
        if wait:
            return protocol.error("rate_limited", f"too fast; try again in {wait:.1f} s", command.ref, wait)
        async with live.lock:
            if not live.owner:
                return protocol.error("room_moved", "the room moved to another process; please try again", command.ref)
            now = time.time()
            try:
                await self._commit_and_send(live, live.room.decide(actor, command, now), now)
            except store.RoomMoved as exc:
                log.warning("room %s: taken over by another process; following it", live.room.session_id)
                self._follow(live)
                return protocol.error(exc.code, exc.message, command.ref)
            except RoomError as exc:
                return protocol.error(exc.code, exc.message, command.ref)
            except Exception:
                log.exception("could not commit %s in session %s", command.type, live.room.session_id)
                return protocol.error("internal", "not saved; please try again", command.ref)
        return protocol.ack(command.ref) if command.ref is not None else {}

    async def _take_token(self, live: SharedRoom, actor: Actor, command_type: str) -> float:
        """The person's token for this kind of action (0: allowed, else the seconds to wait).

        Every command of the room passes through its owner, whichever process the person is connected to, and
        the owner takes the token from the person's bucket in Redis (beside each connection's own): the limit
        holds across processes and does not start afresh when the room moves to another owner. While Redis is
        unreachable the owner's own buckets stand in.
        """
        bucket = BUCKET_OF.get(command_type, "other")
        rate = (STAFF_RATES if actor.is_staff else RATES)[bucket]
        try:
            return await self.registry.take_token(live.room.session_id, actor.person_id, bucket, rate.burst, rate.per_s)
        except RETRYABLE:
            limits = live.limits.get(actor.person_id)
            if limits is None:
                limits = live.limits[actor.person_id] = ConnectionLimits(staff=actor.is_staff)
            return limits.take(command_type)

    async def _forward(self, live: SharedRoom, actor: Actor, command: protocol.Command) -> dict[str, object]:
        self._counter += 1
        reply_id = f"{self._counter}"
        answer: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._waiting[reply_id] = answer
        text = command.model_dump_json(exclude_none=True)
        self._send_to_owner(
            live, ForwardedCommand(t="command", node=self.node, id=reply_id, actor=WireActor.of(actor), text=text)
        )
        try:
            async with asyncio.timeout(FORWARD_TIMEOUT_S):
                return await answer
        except TimeoutError:
            message = "the room did not answer in time; it may or may not have been done"
            return protocol.error("unavailable", message, command.ref)
        finally:
            self._waiting.pop(reply_id, None)

    async def _read_inbox(self, subscription: Subscription) -> None:
        async for item in subscription:
            if isinstance(item, Gap):
                continue  # a lost reply: its command times out
            try:
                reply = cluster.parse(cluster.ToNode, item.payload)
            except MalformedMessage as exc:
                log.warning("dropped a malformed reply: %s", exc)
                continue
            waiting = self._waiting.get(reply.id)
            if waiting is not None and not waiting.done():
                waiting.set_result(reply.message)

    async def publish_captions(
        self,
        session_id: int,
        speaker: dict[str, object],
        finals: list[tuple[float, float, str, float]],
        partial: tuple[float, float, str] | None,
        lag_s: float | None = None,
    ) -> None:
        live = await self.room(session_id)
        assert isinstance(live, SharedRoom)
        if live.owner:
            await super().publish_captions(session_id, speaker, finals, partial, lag_s)
            return
        update = CaptionUpdate(
            t="captions", node=self.node, speaker=dict(speaker), finals=finals, partial=partial, lag_s=lag_s
        )
        self._send_to_owner(live, update)

    # Delivery ----------------------------------------------------------------------------------------

    async def _commit_and_send(self, live: LiveRoom, events: list[Event], now: float) -> list[Event]:
        """As with one process, and the owner commits the bus message of durable events in the same transaction
        (the database outbox), then publishes that very message (caller holds the room's lock).

        Raises:
            RoomError: the database refused (``room_moved``, ``already_voted``); nothing was applied or sent.
        """
        if not (isinstance(live, SharedRoom) and live.owner and any(e.durable for e in events)):
            return await super()._commit_and_send(live, events, now)
        first_seq = live.room.log.seq + 1
        committed = await self.database.write(outbox.commit, live.room, events, now, self.node)
        live.room.apply(events)
        assert events[0].seq == first_seq, "the room changed while its lock was held"
        self._broadcast(live, events, committed=committed)
        await self.media.on_events(live, events)
        return events

    def _broadcast(
        self,
        live: LiveRoom,
        events: Iterable[Event],
        skip: Connection | None = None,
        committed: tuple[int, bytes] | None = None,
    ) -> None:
        """Deliver to this process's connections; the owner also publishes the batch to the other processes
        (``committed``: the outbox row of the batch and its message, as committed with the events)."""
        events = list(events)
        if not events:
            return
        super()._broadcast(live, events, skip)
        if isinstance(live, SharedRoom) and live.owner:
            if committed is None:
                self._publish(live, cluster.batch(self.node, live.room.log.epoch, events))
            else:
                self._publish_row(cluster.room_topic(live.room.session_id), *committed)
        for event in events:
            if event.kind == "participant.removed":
                for other in live.of_person(event.data["person_id"]):
                    asyncio.create_task(other.outbox.close(CloseCode.FORBIDDEN, "removed by a moderator"))

    def owns(self, live: LiveRoom) -> bool:
        return isinstance(live, SharedRoom) and live.owner

    # The database outbox -----------------------------------------------------------------------------

    def _publish_row(self, topic: str, row_id: int, payload: bytes) -> None:
        """Publish an outbox row's message; the row is deleted once Redis has it (else it stays for the next owner)."""
        try:
            done = self.bus.publish(topic, payload)
        except BusClosed:
            return  # shutting down: the row stays, and the room's next owner publishes it
        self.outbox_waiting.add(row_id)
        done.add_done_callback(partial(self._row_published, row_id))

    def _row_published(self, row_id: int, done: asyncio.Future[str]) -> None:
        if done.cancelled():  # the bus closed before Redis took it: the row stays for the next owner
            self.outbox_waiting.discard(row_id)
            return
        if done.exception() is not None:  # refused for good (the bus logged why): retrying would not help
            log.error("outbox row %d: Redis refused its message; the row is dropped", row_id)
        self._outbox_taken.add(row_id)
        if len(self._outbox_taken) >= OUTBOX_DELETE_BATCH:
            self._outbox_wake.set()

    async def _delete_published(self) -> None:
        """Delete the outbox rows whose messages Redis has taken, together, every ``OUTBOX_DELETE_S`` or sooner
        when many wait; a failed delete is tried again (a row deleted late only gets published twice at worst)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OUTBOX_DELETE_S):
                    await self._outbox_wake.wait()
            self._outbox_wake.clear()
            try:
                await self._delete_taken()
            except Exception:
                log.exception("could not delete published outbox rows; trying again")
                await asyncio.sleep(1.0)

    async def _delete_taken(self) -> None:
        if not self._outbox_taken:
            return
        ids = set(self._outbox_taken)
        await self.database.write(outbox.delete, ids)
        self._outbox_taken -= ids
        self.outbox_waiting -= ids

    def present(self, live: LiveRoom) -> int:
        """People present in the room (the owner counts them; a replica knows the announced roster)."""
        if isinstance(live, SharedRoom) and not live.owner:
            return len(live.room.roster)
        return len(live.room.members)
