"""What the processes that share rooms through Redis say to each other, and the Redis keys they share.

One process owns each room (it holds the room's lease) and runs its state machine; the others keep a
replica and forward their clients' commands. Keys (all under ``forumlive:``):

- ``room:<session>:owner``: the owner's node id, with a lease (``PX``) the owner renews;
- ``node:<node>``: a live process, refreshed every heartbeat, expiring after three missed ones;
- ``connections:<session>:<person>``: a person's connections to a room over all processes (the cap);
- ``limit:<session>:<person>:<bucket>``: a person's token bucket of a kind of action in a room (rate limits).

Bus topics (Redis streams, ``realtime.bus``):

- ``room.<session>``: from the owner to every process with the room: event batches (JSON), state
  transfers (signed, versioned JSON of the room: ``server.rooms.transfer``) and requests to re-announce
  presence;
- ``owner.<session>``: to the owner: forwarded commands, presence, state requests, captions;
- ``node.<node>``: replies to forwarded commands.

Messages are parsed at the edge like client messages (pydantic, unknown keys refused); a malformed
one is logged and dropped, and a forwarded command gets a ``bad_request`` error back when its sender
can be named.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from realtime.log import Event
from realtime.room import Actor, Role

log = logging.getLogger("forumlive.cluster")

PREFIX = "forumlive:"

# Atomically: take the lease if free, renew it if already ours; 1 if we hold it afterwards.
_CLAIM = """
local holder = redis.call('get', KEYS[1])
if not holder then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# A connection of a person to a room, counted across processes: entries not refreshed since ARGV[1] (their
# process died) are dropped first; then the connection is added unless ARGV[2] are there already.
_ADMIT = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('zadd', KEYS[1], ARGV[3], ARGV[4])
redis.call('pexpire', KEYS[1], ARGV[5])
return 1
"""
# A token bucket (ARGV[1] burst, refilled one token per ARGV[2] seconds) on Redis's clock, so that every process
# sees the same; returns "0" when a token was taken, else the seconds to wait for the next one.
_TAKE = """
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local kept = redis.call('hmget', KEYS[1], 'tokens', 'at')
local tokens = tonumber(kept[1]) or burst
local at = tonumber(kept[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / per)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) * per end
redis.call('hset', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('pexpire', KEYS[1], math.ceil(burst * per * 1000) + 1000)
return string.format('%.3f', wait)
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def new_node_id() -> str:
    return secrets.token_hex(6)


def room_topic(session_id: int) -> str:
    return f"room.{session_id}"


def owner_topic(session_id: int) -> str:
    return f"owner.{session_id}"


def node_topic(node: str) -> str:
    return f"node.{node}"


class Registry:
    """Leases of rooms and heartbeats of processes in Redis.

    Args:
        url: the Redis URL.
        node: this process's id.
        lease_s: how long a lease lasts without renewal.
        heartbeat_s: how often this process says it is alive (its key lives three heartbeats).
    """

    def __init__(self, url: str, node: str, lease_s: float, heartbeat_s: float) -> None:
        self.node = node
        self.lease_ms = max(1, int(lease_s * 1000))
        self.heartbeat_s = heartbeat_s
        self._redis = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)
        self._admit = self._redis.register_script(_ADMIT)
        self._take = self._redis.register_script(_TAKE)

    async def close(self) -> None:
        await self._redis.aclose()

    async def claim(self, session_id: int) -> bool:
        """Take or renew the room's lease; True when this process holds it now."""
        return bool(await self._claim(keys=[f"{PREFIX}room:{session_id}:owner"], args=[self.node, self.lease_ms]))

    async def release(self, session_id: int) -> None:
        await self._release(keys=[f"{PREFIX}room:{session_id}:owner"], args=[self.node])

    def _connections_key(self, session_id: int, person_id: int) -> str:
        return f"{PREFIX}connections:{session_id}:{person_id}"

    async def admit_connection(self, session_id: int, person_id: int, connection: str, cap: int) -> bool:
        """Count a person's connection to a room across processes; False when ``cap`` are open already."""
        now = time.time()
        stale = now - 3 * self.heartbeat_s
        ttl_ms = max(1, int(self.heartbeat_s * 3000))
        key = self._connections_key(session_id, person_id)
        return bool(await self._admit(keys=[key], args=[stale, cap, now, connection, ttl_ms]))

    async def connections(self, session_id: int, person_id: int) -> int:
        """A person's live connections to a room over all processes (those of dead processes not counted)."""
        stale = time.time() - 3 * self.heartbeat_s
        return int(await self._redis.zcount(self._connections_key(session_id, person_id), f"({stale}", "+inf"))

    async def drop_connection(self, session_id: int, person_id: int, connection: str) -> None:
        await self._redis.zrem(self._connections_key(session_id, person_id), connection)

    async def refresh_connections(self, connections: list[tuple[int, int, str]]) -> None:
        """Keep this process's connections counted (``(session, person, connection)``), every heartbeat."""
        if not connections:
            return
        now = time.time()
        ttl_ms = max(1, int(self.heartbeat_s * 3000))
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, person_id, connection in connections:
                key = self._connections_key(session_id, person_id)
                pipe.zadd(key, {connection: now}, xx=True)
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def take_token(self, session_id: int, person_id: int, bucket: str, burst: int, per_s: float) -> float:
        """Take a token from a person's bucket of a room, shared by all processes and kept when the room moves to
        another owner (it expires once full again); 0 when allowed, else the seconds to wait."""
        key = f"{PREFIX}limit:{session_id}:{person_id}:{bucket}"
        return float(await self._take(keys=[key], args=[burst, per_s]))

    async def beat(self) -> None:
        """Say this process is alive (for three heartbeats)."""
        ttl_ms = max(1, int(self.heartbeat_s * 3000))
        await self._redis.set(f"{PREFIX}node:{self.node}", str(time.time()), px=ttl_ms)

    async def gone(self) -> None:
        await self._redis.delete(f"{PREFIX}node:{self.node}")

    async def dead(self, nodes: set[str]) -> set[str]:
        """The nodes among ``nodes`` whose heartbeat key has expired."""
        ordered = sorted(nodes)
        if not ordered:
            return set()
        values = await self._redis.mget([f"{PREFIX}node:{n}" for n in ordered])
        return {n for n, value in zip(ordered, values, strict=True) if value is None}


# Messages -------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WireActor(_Wire):
    person_id: int
    name: str
    role: Role = Field(strict=False)

    @classmethod
    def of(cls, actor: Actor) -> WireActor:
        return cls(person_id=actor.person_id, name=actor.name, role=actor.role)

    def actor(self) -> Actor:
        return Actor(self.person_id, self.name, self.role)


class ForwardedCommand(_Wire):
    """A client's command, forwarded to the owner; the reply goes to ``node.<node>`` with ``id``."""

    t: Literal["command"]
    node: str
    id: str
    actor: WireActor
    text: str


class PresenceJoin(_Wire):
    t: Literal["join"]
    node: str
    actor: WireActor


class PresenceLeave(_Wire):
    t: Literal["leave"]
    node: str
    person_id: int


class PresenceSync(_Wire):
    """Everyone connected to the room through ``node`` (a person once per connection)."""

    t: Literal["sync"]
    node: str
    people: list[WireActor]


class StateRequest(_Wire):
    t: Literal["state?"]
    node: str


class CaptionUpdate(_Wire):
    t: Literal["captions"]
    node: str
    speaker: dict[str, Any]
    finals: list[tuple[float, float, str, float]] = Field(strict=False)
    partial: tuple[float, float, str] | None = Field(default=None, strict=False)
    lag_s: float | None = Field(default=None, strict=False)


ToOwner = TypeAdapter(
    Annotated[
        ForwardedCommand | PresenceJoin | PresenceLeave | PresenceSync | StateRequest | CaptionUpdate,
        Field(discriminator="t"),
    ]
)


class WireEvent(_Wire):
    kind: str
    data: dict[str, Any]
    related: list[int]
    durable: bool
    seq: int

    def event(self) -> Event:
        return Event(self.kind, self.data, frozenset(self.related), self.durable, self.seq)


class EventBatch(_Wire):
    """Events of the room applied by the owner, in order (one command's events travel together)."""

    t: Literal["events"]
    node: str
    epoch: str
    events: list[WireEvent]


class SyncRequest(_Wire):
    """The owner asks every process to announce who is connected through it (``PresenceSync``)."""

    t: Literal["sync?"]
    node: str
    epoch: str


FromOwner = TypeAdapter(Annotated[EventBatch | SyncRequest, Field(discriminator="t")])


class Reply(_Wire):
    t: Literal["reply"]
    id: str
    message: dict[str, Any]


ToNode = TypeAdapter(Reply)


class MalformedMessage(ValueError):
    """A bus message that is not one of ours (bad JSON, unknown type, wrong fields, bad signature)."""


def dumps(message: _Wire) -> bytes:
    return message.model_dump_json().encode()


def parse(adapter: TypeAdapter[Any], payload: bytes) -> Any:  # noqa: ANN401 - one of the adapter's models
    """Parse a JSON bus message.

    Raises:
        MalformedMessage: what was wrong with it.
    """
    try:
        return adapter.validate_python(json.loads(payload))
    except (ValueError, ValidationError) as exc:
        raise MalformedMessage(str(exc)[:300]) from None


def batch(node: str, epoch: str, events: list[Event], first_seq: int | None = None) -> EventBatch:
    """The batch of applied events; with ``first_seq``, of events not applied yet, which will have the ``seq``
    from ``first_seq`` on (the database outbox writes the batch in the transaction that commits them)."""
    seqs = [e.seq for e in events] if first_seq is None else list(range(first_seq, first_seq + len(events)))
    wire = [
        WireEvent(kind=e.kind, data=e.data, related=sorted(e.related), durable=e.durable, seq=seq)
        for e, seq in zip(events, seqs, strict=True)
    ]
    return EventBatch(t="events", node=node, epoch=epoch, events=wire)
