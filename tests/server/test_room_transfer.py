"""State transfers between processes (``server.rooms.transfer``): versioned JSON, every field carried, and a
state of another version, of the wrong shape or badly signed refused with the reason."""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from typing import Any

import pytest

from realtime import cafe as algo
from realtime.cafe_room import CafePhase, CafeState, Note
from realtime.log import Event
from realtime.room import (
    Actor,
    ChatMessage,
    Poll,
    PollState,
    Question,
    QuestionStatus,
    Role,
    Room,
    RoomSettings,
    RoomState,
)
from realtime.views import snapshot
from server.rooms import transfer
from server.rooms.cluster import MalformedMessage

SECRET = b"k" * 32
MODERATOR = Actor(1, "Mo", Role.MODERATOR)
ANA = Actor(2, "Ana", Role.PARTICIPANT)


def rich_room(cafe: bool = True) -> Room:
    """A room with something in every part, as an owner would have it after a while."""
    room = Room(7, RoomSettings(RoomState.LIVE, pre_approval=True, slow_mode_s=5, stage=[1], muted=[3]), cafe=cafe)
    room.language = "fr"
    room.removed = {4}
    room.connect(MODERATOR)
    room.connect(ANA)
    room.connect(ANA)
    room.apply(room.flush_presence())
    room.names[5] = "Away"
    room.hands[2] = 12.5
    room.apply(
        [
            Event("chat.posted", {"id": i, "person_id": 2, "name": "Ana", "text": f"line {i}", "at": 1.0 + i})
            for i in range(3)
        ]
    )
    room.load_chat(ChatMessage(9, 2, "Ana", "hello", 3.25))
    room.last_chat_at[2] = 3.25
    room.load_question(Question(1, 2, "Ana", "Why?", False, QuestionStatus.APPROVED, 4.0, pinned=True, voters={1, 2}))
    room.load_question(Question(2, 1, "Mo", "How?", True, QuestionStatus.ANSWERED, 5.0, answer="So."))
    room.load_poll(Poll(1, "Tea?", ["yes", "no"], True, "live", PollState.OPEN, {1: (0, 1), 2: (1,)}))
    room.load_moderation({"action": "mute", "person_id": 3, "at": 2.0})
    room.load_caption({"id": 1, "text": "Bonjour.", "track": "auto", "start_s": 0.0, "end_s": 1.0})
    room.partials["auto:1"] = {"text": "et", "track": "auto", "start_s": 1.0, "end_s": 1.5}
    room.media_muted[1] = {"audio": "self"}
    if room.cafe is not None:
        c = room.cafe
        c.tables = {1: algo.CafeTable(1, "Water", 6, host_id=1), 2: algo.CafeTable(2, "Soil", 5)}
        c.seats = {2: 1, 5: 2}
        c.phase, c.round, c.started_at, c.ends_at, c.warned = CafePhase.ROUND, 2, 100.0, 700.0, True
        c.notes = {3: Note(3, 1, 2, 2, "Ana", "An idea", True, 101.5, edited_at=102.0)}
        c.chat.append({"table_id": 1, "person_id": 2, "text": "hi"})
        c.met = {(1, 2), (2, 5)}
        c.broadcaster, c.reporting_table_id = 1, 2
        c.profiles = {2: ("civil_society", None), 5: (None, "Europe")}
    return room


def comparable(room: Room) -> dict[str, Any]:
    """Everything a room holds, in plain values (deques with their bounds, the log's kept events)."""
    out: dict[str, Any] = {}
    for name, value in vars(room).items():
        if name == "log":
            value = (value.epoch, value.seq, [dataclasses.astuple(e)[:5] for e in value._events])
        elif name == "cafe" and value is not None:
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            value["chat"] = (list(value["chat"]), value["chat"].maxlen)
        elif isinstance(value, deque):
            value = (list(value), value.maxlen)
        out[name] = value
    return out


def without_clock(view: dict[str, Any]) -> dict[str, Any]:
    """A snapshot less the café's ``now`` (the server's clock when it was taken)."""
    if view.get("cafe"):
        view = {**view, "cafe": {k: v for k, v in view["cafe"].items() if k != "now"}}
    return view


def test_every_field_of_the_room_is_carried() -> None:
    """A field added to the room (or a café) that the transfer does not carry fails here."""
    assert set(vars(Room(1, cafe=True))) == transfer.ROOM_FIELDS | transfer.DERIVED_ROOM_FIELDS
    assert {f.name for f in dataclasses.fields(CafeState)} == transfer.CAFE_FIELDS


@pytest.mark.parametrize("cafe", [True, False])
def test_a_room_survives_the_transfer_whole(cafe: bool) -> None:
    room = rich_room(cafe)
    payload = transfer.seal_state(SECRET, "node-a", room)
    body = json.loads(payload[33:])
    assert (body["t"], body["v"]) == ("state", transfer.STATE_VERSION)
    state = transfer.open_state(SECRET, payload)
    assert state.node == "node-a"
    assert comparable(state.room) == comparable(room)
    for viewer in (MODERATOR, ANA):
        assert without_clock(snapshot(state.room, viewer)) == without_clock(snapshot(room, viewer))
    # The copy lives on: it applies the next event as the owner's room does.
    event = Event("chat.posted", {"id": 10, "person_id": 1, "name": "Mo", "text": "next", "at": 9.0})
    room.apply([event])
    state.room.apply([dataclasses.replace(event, seq=0)])
    assert comparable(state.room) == comparable(room)


def test_only_the_newest_events_travel() -> None:
    room = Room(1)
    room.apply([Event("chat.deleted", {"id": i}) for i in range(transfer.STATE_EVENTS + 10)])
    copy = transfer.open_state(SECRET, transfer.seal_state(SECRET, "a", room)).room
    assert copy.log.seq == room.log.seq
    assert copy.log.since(room.log.epoch, 9) is None
    assert [e.seq for e in copy.log.since(room.log.epoch, 10)] == list(range(11, room.log.seq + 1))


def signed(body: bytes) -> bytes:
    import hashlib
    import hmac

    return transfer.STATE_MARK + hmac.new(SECRET, body, hashlib.sha256).digest() + body


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: {**b, "v": 2}, "version 2; this process reads version 1"),
        (lambda b: {k: v for k, v in b.items() if k != "v"}, "version None"),
        (lambda b: {**b, "seq": "12"}, "does not fit version 1"),
        (lambda b: {k: v for k, v in b.items() if k != "polls"}, "does not fit version 1"),
        (lambda b: {**b, "extra": 1}, "does not fit version 1"),
        (lambda b: {**b, "state": "on_fire"}, "does not fit version 1"),
        (lambda b: [b], "not a JSON object"),
    ],
)
def test_a_state_of_another_version_or_shape_is_refused_with_the_reason(change, reason: str) -> None:  # noqa: ANN001
    body = json.loads(transfer.seal_state(SECRET, "a", rich_room())[33:])
    with pytest.raises(MalformedMessage, match=reason):
        transfer.open_state(SECRET, signed(json.dumps(change(body)).encode()))


def test_a_state_not_signed_with_the_key_or_not_json_is_refused() -> None:
    payload = transfer.seal_state(SECRET, "a", rich_room())
    with pytest.raises(MalformedMessage, match="bad signature"):
        transfer.open_state(b"another key", payload)
    with pytest.raises(MalformedMessage, match="bad signature"):
        transfer.open_state(SECRET, payload[:-1] + b" ")
    with pytest.raises(MalformedMessage, match="not JSON"):
        transfer.open_state(SECRET, signed(b"\x80\x04pickle"))
