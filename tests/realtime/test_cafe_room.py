"""The café inside the room core, without sockets: tables, seating, rounds, notes, plenary and views."""

from __future__ import annotations

import itertools
import json

import pytest

from realtime import cafe_room
from realtime import protocol as p
from realtime.client import ClientState
from realtime.room import Actor, Role, Room, RoomError, RoomSettings, RoomState
from realtime.views import render, snapshot

MOD = Actor(1, "Mo Moderator", Role.MODERATOR)
HOST = Actor(2, "Hana Host", Role.PARTICIPANT)
PEOPLE = [Actor(10 + i, f"Guest {i}", Role.PARTICIPANT) for i in range(6)]


class Harness:
    """A café room with ids given as the store gives them, driven as the server drives it."""

    def __init__(self) -> None:
        self.room = Room(7, RoomSettings(state=RoomState.LIVE), cafe=True)
        self.ids = itertools.count(1)
        self.now = 1000.0
        for actor in (MOD, HOST, *PEOPLE):
            self.room.connect(actor)
        self.room.flush_presence()

    def commit(self, events: list) -> list:
        for event in events:
            if event.kind == "cafe.table.added":
                event.data["table"]["id"] = next(self.ids)
            elif event.kind == "cafe.note" and event.data["action"] == "added":
                event.data["note"]["id"] = next(self.ids)
        return events

    def do(self, actor: Actor, message: dict) -> list:
        self.now += 1
        command = p.parse_client(json.dumps(message))
        return self.room.apply(self.commit(self.room.decide(actor, command, self.now)))

    def refused(self, actor: Actor, message: dict) -> str:
        seq = self.room.log.seq
        with pytest.raises(RoomError) as info:
            self.do(actor, message)
        assert self.room.log.seq == seq
        return info.value.code

    def tick(self, at: float) -> list:
        self.now = at
        return self.room.apply(cafe_room.tick(self.room, at))

    def tables(self, count: int = 2, seats: int = 4) -> list[int]:
        ids = []
        for i in range(count):
            host = {"host_id": HOST.person_id} if i == 0 else {}
            added = self.do(MOD, {"type": "cafe.table.add", "topic": f"Topic {i}", "seats": seats, **host})
            ids.append(added[0].data["table"]["id"])
        return ids


def test_cafe_commands_in_a_plain_room_are_refused():
    """A session that is not a café answers café commands with invalid."""
    room = Room(7, RoomSettings(state=RoomState.LIVE))
    with pytest.raises(RoomError, match="not a knowledge café"):
        room.decide(MOD, p.parse_client('{"type": "cafe.join", "table_id": 1}'), 1.0)


def test_tables_joining_full_tables_and_hosts():
    """Participants join and switch tables; a full table refuses them but not its host or a moderator."""
    h = Harness()
    first, second = h.tables(seats=2)
    assert h.refused(PEOPLE[0], {"type": "cafe.table.add", "topic": "x", "seats": 2}) == "forbidden"
    h.do(PEOPLE[0], {"type": "cafe.join", "table_id": first})
    h.do(PEOPLE[1], {"type": "cafe.join", "table_id": first})
    assert h.refused(PEOPLE[2], {"type": "cafe.join", "table_id": first}) == "table_full"
    assert h.refused(PEOPLE[2], {"type": "cafe.join", "table_id": 999}) == "not_found"
    h.do(HOST, {"type": "cafe.join", "table_id": first})  # the host's seat
    h.do(PEOPLE[1], {"type": "cafe.join", "table_id": second})  # a switch
    h.do(PEOPLE[0], {"type": "cafe.leave"})
    seated = {s["person_id"]: s["table_id"] for s in snapshot(h.room, PEOPLE[3])["cafe"]["seated"]}
    assert seated == {HOST.person_id: first, PEOPLE[1].person_id: second}


def test_rounds_warning_deadline_and_rotation():
    """A round counts down on server time, warns before the end, ends at the deadline and rotates."""
    h = Harness()
    first, second = h.tables(seats=4)
    h.room.cafe.profiles.update(
        {a.person_id: ("business" if i % 2 else "government", None) for i, a in enumerate(PEOPLE)}
    )
    h.do(MOD, {"type": "cafe.seat"})
    before = {s["person_id"]: s["table_id"] for s in snapshot(h.room, MOD)["cafe"]["seated"]}
    assert before[HOST.person_id] == first and len(before) == 7
    started = h.do(MOD, {"type": "cafe.round.start", "duration_s": 600})[0]
    assert started.data["ends_at"] == started.data["started_at"] + 600
    assert h.refused(MOD, {"type": "cafe.seat"}) == "invalid"  # not during a round
    h.do(MOD, {"type": "cafe.round.adjust", "delta_s": 120})  # extend
    h.do(MOD, {"type": "cafe.round.adjust", "delta_s": -300})  # shorten
    ends = h.room.cafe.ends_at
    assert ends == started.data["started_at"] + 420
    assert h.refused(MOD, {"type": "cafe.round.adjust", "delta_s": -1000}) == "invalid"
    assert h.tick(ends - 100) == []
    warning = h.tick(ends - 59)
    assert [e.data["warning"] for e in warning] == [True]
    assert h.tick(ends - 30) == []  # warned once
    ended = h.tick(ends + 0.5)
    assert [e.kind for e in ended] == ["cafe.round", "cafe.seated"]
    assert ended[0].data["state"] == "ended" and ended[1].data["round"] == 2
    after = {s["person_id"]: s["table_id"] for s in snapshot(h.room, MOD)["cafe"]["seated"]}
    assert after[HOST.person_id] == first
    assert all(after[pid] != before[pid] for pid in before if pid != HOST.person_id)
    assert h.refused(MOD, {"type": "cafe.round.end"}) == "round_ended"
    assert h.refused(MOD, {"type": "cafe.round.adjust", "delta_s": 60}) == "round_ended"


def test_notes_by_people_at_the_table_and_insights_by_hosts():
    """Anyone at the table adds, edits and deletes its cards; others may not; the host marks key insights."""
    h = Harness()
    first, second = h.tables()
    h.do(HOST, {"type": "cafe.join", "table_id": first})
    h.do(PEOPLE[0], {"type": "cafe.join", "table_id": first})
    h.do(PEOPLE[1], {"type": "cafe.join", "table_id": second})
    assert h.refused(PEOPLE[2], {"type": "cafe.note.add", "text": "x"}) == "not_at_table"
    note = h.do(PEOPLE[0], {"type": "cafe.note.add", "text": "Community networks <b>work</b>"})[0].data["note"]
    assert note["table_id"] == first
    assert h.refused(PEOPLE[1], {"type": "cafe.note.edit", "note_id": note["id"], "text": "mine"}) == "not_at_table"
    assert h.refused(PEOPLE[1], {"type": "cafe.note.add", "text": "x", "table_id": first}) == "not_at_table"
    h.do(HOST, {"type": "cafe.note.edit", "note_id": note["id"], "text": "Community networks work"})
    assert h.refused(PEOPLE[0], {"type": "cafe.note.insight", "note_id": note["id"], "insight": True}) == "forbidden"
    h.do(HOST, {"type": "cafe.note.insight", "note_id": note["id"], "insight": True})
    notes = snapshot(h.room, PEOPLE[3])["cafe"]["notes"]
    assert [(n["text"], n["insight"]) for n in notes] == [("Community networks work", True)]
    h.do(PEOPLE[0], {"type": "cafe.note.delete", "note_id": note["id"]})
    assert snapshot(h.room, PEOPLE[3])["cafe"]["notes"] == []
    assert h.refused(PEOPLE[0], {"type": "cafe.note.delete", "note_id": note["id"]}) == "not_found"


def test_rotation_with_more_people_than_seats_is_refused_and_changes_nothing():
    """A moderator's rotation when people outnumber the seats: not_enough_seats, nobody moves."""
    h = Harness()
    (only,) = h.tables(count=1, seats=2)
    for actor in (PEOPLE[0], PEOPLE[1], MOD):  # a moderator may sit at a full table
        h.do(actor, {"type": "cafe.join", "table_id": only})
    seated = snapshot(h.room, MOD)["cafe"]["seated"]
    assert h.refused(MOD, {"type": "cafe.rotate"}) == "not_enough_seats"
    assert snapshot(h.room, MOD)["cafe"]["seated"] == seated


def test_snapshot_plus_events_equals_a_fresh_snapshot():
    """A page that joined at the start and applied every café event sees what a fresh snapshot shows."""
    h = Harness()
    viewer = PEOPLE[5]
    client = ClientState(
        viewer.person_id, {"epoch": h.room.log.epoch, "seq": h.room.log.seq, "snapshot": snapshot(h.room, viewer)}
    )
    first, second = h.tables()
    h.do(MOD, {"type": "cafe.seat"})
    h.do(MOD, {"type": "cafe.round.start", "duration_s": 300})
    h.do(PEOPLE[0], {"type": "cafe.chat", "text": "hello table"})
    note = h.do(PEOPLE[0], {"type": "cafe.note.add", "text": "idea"})[0].data["note"]
    h.do(MOD, {"type": "cafe.note.insight", "note_id": note["id"], "insight": True})
    h.do(MOD, {"type": "cafe.broadcast", "on": True})
    h.do(MOD, {"type": "cafe.round.end"})
    h.do(MOD, {"type": "cafe.plenary", "table_id": first})
    for event in h.room.log.since(client.epoch, client.seq):
        client.receive(json.loads(render(h.room, event, viewer)))
    fresh = snapshot(h.room, viewer)
    client.view["cafe"].pop("now")
    fresh["cafe"].pop("now")
    assert client.view == fresh
    assert fresh["cafe"]["phase"] == "plenary" and fresh["cafe"]["reporting_table_id"] == first
    assert [s["id"] for s in fresh["stage"]] == [HOST.person_id], "the reporting table's host speaks from the stage"
    h.do(MOD, {"type": "cafe.plenary", "table_id": second})  # a table without a host: the host steps down
    assert snapshot(h.room, viewer)["stage"] == []
