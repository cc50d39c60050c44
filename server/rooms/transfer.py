"""State transfers between the processes that share a room: the owner's room as JSON, with a version.

A replica that lost track of the room (a gap in ``seq``, another epoch, Redis restarted) asks the owner
for its state; the owner publishes it on the room's topic, where the events after it follow in order.
The state is the room as the owner had it after the event ``seq``, with its newest ``STATE_EVENTS``
events so that clients can resume from them on any process.

Wire form: ``b"S"`` + HMAC-SHA256 of the body under the deployment's secret key (32 bytes) + the body,
a JSON object with ``"t": "state"`` and ``"v": STATE_VERSION``. Each part of the room has an explicit
schema below (pydantic, unknown keys refused), so a process reads only what it understands: a state
of another version (a mixed deployment during an upgrade), a body that does not fit the schema or a bad
signature raise ``MalformedMessage`` with the reason, and the replica keeps the room it had.

``ROOM_FIELDS`` and ``CAFE_FIELDS`` list what is carried; ``tests/server/test_room_transfer.py`` fails
when the room gains a field this module does not carry (add it here and raise ``STATE_VERSION`` when
the meaning of the body changes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from realtime import cafe as algo
from realtime.cafe_room import CafePhase, CafeState, Note
from realtime.log import Event, EventLog
from realtime.room import (
    ChatMessage,
    Member,
    Poll,
    PollState,
    Question,
    QuestionStatus,
    Role,
    Room,
    RoomState,
)
from server.rooms.cluster import MalformedMessage, WireEvent

STATE_VERSION = 1
# A state transfer carries this many of the newest events, so that clients resume from them on any process.
STATE_EVENTS = 2_000
STATE_MARK = b"S"

# What is carried of a Room's attributes and of a CafeState's fields (checked by the tests against the classes).
ROOM_FIELDS = frozenset(
    {
        "session_id",
        "language",
        "log",
        "state",
        "locked",
        "pre_approval",
        "slow_mode_s",
        "stage",
        "muted",
        "removed",
        "members",
        "roster",
        "names",
        "hands",
        "chat",
        "last_chat_at",
        "questions",
        "polls",
        "moderation",
        "captions",
        "partials",
        "media_muted",
        "cafe",
    }
)
# A Room's attributes rebuilt from what is carried rather than carried themselves.
DERIVED_ROOM_FIELDS = frozenset({"listed"})
CAFE_FIELDS = frozenset(
    {
        "tables",
        "seats",
        "phase",
        "round",
        "started_at",
        "ends_at",
        "warned",
        "notes",
        "chat",
        "met",
        "broadcaster",
        "reporting_table_id",
        "profiles",
    }
)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WireMember(_Part):
    person_id: int
    name: str
    role: Role
    connections: int


class WireChat(_Part):
    id: int
    person_id: int
    name: str
    text: str
    at: float


class WireQuestion(_Part):
    id: int
    person_id: int
    name: str
    text: str
    anonymous: bool
    status: QuestionStatus
    at: float
    pinned: bool
    answer: str | None
    voters: list[int]


class WirePoll(_Part):
    id: int
    question: str
    options: list[str]
    multiple: bool
    results: str
    state: PollState
    votes: list[tuple[int, list[int]]]  # (person, chosen options)


class WireTable(_Part):
    id: int
    topic: str
    seats: int
    host_id: int | None


class WireNote(_Part):
    id: int
    table_id: int
    round: int
    person_id: int
    name: str
    text: str
    insight: bool
    at: float
    edited_at: float | None


class WireCafe(_Part):
    tables: list[WireTable]
    seats: list[tuple[int, int]]  # (person, table)
    phase: CafePhase
    round: int
    started_at: float | None
    ends_at: float | None
    warned: bool
    notes: list[WireNote]
    chat: list[dict[str, Any]]
    met: list[tuple[int, int]]
    broadcaster: int | None
    reporting_table_id: int | None
    profiles: list[tuple[int, str | None, str | None]]  # (person, stakeholder type, region)


class WireState(_Part):
    """A room after the event ``seq`` of ``epoch``; maps keyed by person are lists of pairs (JSON keys are text)."""

    t: Literal["state"]
    v: Literal[1]
    node: str
    session_id: int
    language: str
    epoch: str
    seq: int
    events: list[WireEvent] = Field(max_length=STATE_EVENTS)
    state: RoomState
    locked: bool
    pre_approval: bool
    slow_mode_s: int
    stage: list[int]
    muted: list[int]
    removed: list[int]
    members: list[WireMember]
    roster: list[tuple[int, dict[str, Any]]]
    names: list[tuple[int, str]]
    hands: list[tuple[int, float]]
    chat: list[WireChat]
    last_chat_at: list[tuple[int, float]]
    questions: list[WireQuestion]
    polls: list[WirePoll]
    moderation: list[dict[str, Any]]
    captions: list[dict[str, Any]]
    partials: dict[str, dict[str, Any]]
    media_muted: list[tuple[int, dict[str, str]]]
    cafe: WireCafe | None


@dataclass
class State:
    """A room as its owner had it after the event ``room.log.seq``."""

    node: str
    room: Room


def _cafe(cafe: CafeState) -> WireCafe:
    return WireCafe(
        tables=[WireTable(id=t.id, topic=t.topic, seats=t.seats, host_id=t.host_id) for t in cafe.tables.values()],
        seats=sorted(cafe.seats.items()),
        phase=cafe.phase,
        round=cafe.round,
        started_at=cafe.started_at,
        ends_at=cafe.ends_at,
        warned=cafe.warned,
        notes=[WireNote(**dataclasses.asdict(n)) for n in cafe.notes.values()],
        chat=list(cafe.chat),
        met=sorted(cafe.met),
        broadcaster=cafe.broadcaster,
        reporting_table_id=cafe.reporting_table_id,
        profiles=[(person, kind, region) for person, (kind, region) in sorted(cafe.profiles.items())],
    )


def to_wire(node: str, room: Room) -> WireState:
    kept = list(room.log._events)[-STATE_EVENTS:]
    return WireState(
        t="state",
        v=STATE_VERSION,
        node=node,
        session_id=room.session_id,
        language=room.language,
        epoch=room.log.epoch,
        seq=room.log.seq,
        events=[
            WireEvent(kind=e.kind, data=e.data, related=sorted(e.related), durable=e.durable, seq=e.seq) for e in kept
        ],
        state=room.state,
        locked=room.locked,
        pre_approval=room.pre_approval,
        slow_mode_s=room.slow_mode_s,
        stage=list(room.stage),
        muted=sorted(room.muted),
        removed=sorted(room.removed),
        members=[
            WireMember(person_id=m.person_id, name=m.name, role=m.role, connections=m.connections)
            for m in room.members.values()
        ],
        roster=list(room.roster.items()),
        names=list(room.names.items()),
        hands=list(room.hands.items()),
        chat=[WireChat(id=c.id, person_id=c.person_id, name=c.name, text=c.text, at=c.at) for c in room.chat],
        last_chat_at=list(room.last_chat_at.items()),
        questions=[
            WireQuestion(**{**dataclasses.asdict(q), "voters": sorted(q.voters)}) for q in room.questions.values()
        ],
        polls=[
            WirePoll(
                id=p.id,
                question=p.question,
                options=list(p.options),
                multiple=p.multiple,
                results=p.results,
                state=p.state,
                votes=[(person, list(choice)) for person, choice in p.votes.items()],
            )
            for p in room.polls.values()
        ],
        moderation=list(room.moderation),
        captions=list(room.captions),
        partials=dict(room.partials),
        media_muted=list(room.media_muted.items()),
        cafe=_cafe(room.cafe) if room.cafe is not None else None,
    )


def _room(wire: WireState) -> Room:
    room = Room(wire.session_id, epoch=wire.epoch, language=wire.language)
    events = (Event(e.kind, e.data, frozenset(e.related), e.durable, e.seq) for e in wire.events)
    room.log = EventLog(wire.epoch)
    room.log.seq = wire.seq
    room.log._events.extend(events)
    room.state, room.locked, room.pre_approval = wire.state, wire.locked, wire.pre_approval
    room.slow_mode_s = wire.slow_mode_s
    room.stage, room.muted, room.removed = list(wire.stage), set(wire.muted), set(wire.removed)
    room.members = {m.person_id: Member(m.person_id, m.name, m.role, m.connections) for m in wire.members}
    room.roster = dict(wire.roster)
    room.names = dict(wire.names)
    room.hands = dict(wire.hands)
    chat = (ChatMessage(c.id, c.person_id, c.name, c.text, c.at) for c in wire.chat)
    room.chat = deque(chat, maxlen=room.chat.maxlen)
    room.last_chat_at = dict(wire.last_chat_at)
    room.questions = {
        q.id: Question(**{**q.model_dump(), "status": q.status, "voters": set(q.voters)}) for q in wire.questions
    }
    room.polls = {
        p.id: Poll(p.id, p.question, list(p.options), p.multiple, p.results, p.state, {k: tuple(v) for k, v in p.votes})
        for p in wire.polls
    }
    room.moderation = deque(wire.moderation, maxlen=room.moderation.maxlen)
    room.captions = deque(wire.captions, maxlen=room.captions.maxlen)
    room.partials = dict(wire.partials)
    room.media_muted = dict(wire.media_muted)
    if wire.cafe is not None:
        c = wire.cafe
        cafe = CafeState()
        cafe.tables = {t.id: algo.CafeTable(t.id, t.topic, t.seats, t.host_id) for t in c.tables}
        cafe.seats = dict(c.seats)
        cafe.phase, cafe.round, cafe.started_at, cafe.ends_at = c.phase, c.round, c.started_at, c.ends_at
        cafe.warned = c.warned
        cafe.notes = {n.id: Note(**n.model_dump()) for n in c.notes}
        cafe.chat.extend(c.chat)
        cafe.met = set(c.met)
        cafe.broadcaster, cafe.reporting_table_id = c.broadcaster, c.reporting_table_id
        cafe.profiles = {person: (kind, region) for person, kind, region in c.profiles}
        room.cafe = cafe
    return room


def seal_state(secret: bytes, node: str, room: Room) -> bytes:
    """The room as versioned JSON (with its newest ``STATE_EVENTS`` events), signed. Serialized now, before
    anything changes."""
    body = to_wire(node, room).model_dump_json().encode()
    return STATE_MARK + hmac.new(secret, body, hashlib.sha256).digest() + body


def is_state(payload: bytes) -> bool:
    return payload[:1] == STATE_MARK


def open_state(secret: bytes, payload: bytes) -> State:
    """Check the signature and the version, then read the room.

    Raises:
        MalformedMessage: not signed with this deployment's key, another version, or not a room state.
    """
    mac, body = payload[1:33], payload[33:]
    if len(mac) != 32 or not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        raise MalformedMessage("state transfer with a bad signature")
    try:
        head = json.loads(body)
    except ValueError as exc:
        raise MalformedMessage(f"state transfer that is not JSON: {exc}") from None
    if not isinstance(head, dict) or head.get("t") != "state":
        raise MalformedMessage("state transfer that is not a JSON object with t = state")
    if head.get("v") != STATE_VERSION:
        raise MalformedMessage(
            f"state transfer of version {head.get('v')!r}; this process reads version {STATE_VERSION}"
            " (do all processes run the same forumlive?)"
        )
    try:
        wire = WireState.model_validate_json(body)
    except ValidationError as exc:
        raise MalformedMessage(f"state transfer that does not fit version {STATE_VERSION}: {str(exc)[:300]}") from None
    return State(wire.node, _room(wire))
