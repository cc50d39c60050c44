"""Hypothesis stateful test of a café room: random commands by moderators, a host and participants, and the
clock ticking at random times.

Checks after every step: a page that joined at the start and applied every event sees exactly a fresh
snapshot; a refused command changes nothing; nobody sits beyond a table's seats unless a moderator or
the table's host put them there; everyone seated sits at a table that exists.
"""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from realtime import cafe_room
from realtime import protocol as p
from realtime.client import ClientState
from realtime.room import Actor, Role, Room, RoomError, RoomSettings, RoomState
from realtime.views import render, snapshot

MOD = Actor(1, "Mo", Role.MODERATOR)
HOST = Actor(2, "Hana", Role.PARTICIPANT)
GUESTS = [Actor(10 + i, f"Guest {i}", Role.PARTICIPANT) for i in range(5)]
EVERYONE = [MOD, HOST, *GUESTS]
VIEWER = GUESTS[-1]

commands = st.one_of(
    st.builds(lambda t: {"type": "cafe.join", "table_id": t}, st.integers(1, 4)),
    st.just({"type": "cafe.leave"}),
    st.builds(lambda t: {"type": "cafe.chat", "text": t}, st.sampled_from(["hi", "<b>x</b>"])),
    st.builds(lambda t: {"type": "cafe.note.add", "text": t}, st.sampled_from(["idea", "<i>y</i>"])),
    st.builds(lambda n: {"type": "cafe.note.edit", "note_id": n, "text": "edited"}, st.integers(1, 8)),
    st.builds(lambda n: {"type": "cafe.note.delete", "note_id": n}, st.integers(1, 8)),
    st.builds(lambda n, b: {"type": "cafe.note.insight", "note_id": n, "insight": b}, st.integers(1, 8), st.booleans()),
)
moderator_commands = st.one_of(
    st.builds(lambda s: {"type": "cafe.table.add", "topic": "topic", "seats": s}, st.integers(1, 3)),
    st.just({"type": "cafe.seat"}),
    st.just({"type": "cafe.rotate"}),
    st.builds(lambda d: {"type": "cafe.round.start", "duration_s": d}, st.sampled_from([60, 300])),
    st.builds(lambda d: {"type": "cafe.round.adjust", "delta_s": d}, st.sampled_from([-120, -30, 30])),
    st.just({"type": "cafe.round.end"}),
    st.builds(lambda b: {"type": "cafe.broadcast", "on": b}, st.booleans()),
    st.builds(lambda t: {"type": "cafe.plenary", "table_id": t}, st.none() | st.integers(1, 3)),
)


class CafeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.room = Room(5, RoomSettings(state=RoomState.LIVE), cafe=True)
        for actor in EVERYONE:
            self.room.connect(actor)
        self.room.flush_presence()
        self.room.cafe.profiles.update({g.person_id: (["a", "b"][g.person_id % 2], None) for g in GUESTS})
        self.ids = itertools.count(1)
        self.now = 1000.0
        self.client = ClientState(
            VIEWER.person_id,
            {"epoch": self.room.log.epoch, "seq": self.room.log.seq, "snapshot": snapshot(self.room, VIEWER)},
        )
        self.privileged: set[tuple[int, int]] = set()  # (person, table) seated by a moderator or as host

    def run(self, actor: Actor, message: dict) -> None:
        self.now += 7
        before = snapshot(self.room, MOD)
        try:
            events = self.room.decide(actor, p.parse_client(json.dumps(message)), self.now)
        except RoomError:
            after = snapshot(self.room, MOD)
            before["cafe"].pop("now"), after["cafe"].pop("now")
            assert after == before, "a refused command changed the room"
            return
        self.apply(events, actor)

    def apply(self, events: list, actor: Actor | None = None) -> None:
        for event in events:
            if event.kind == "cafe.table.added":
                event.data["table"]["id"] = next(self.ids)
            elif event.kind == "cafe.note" and event.data["action"] == "added":
                event.data["note"]["id"] = next(self.ids)
            elif event.kind == "cafe.seated":
                for move in event.data["moves"]:
                    pid, table = move["person_id"], move["table_id"]
                    self.privileged = {(who, t) for who, t in self.privileged if who != pid}
                    # Moderators and a table's host may take a seat at a full table themselves.
                    joined = actor is not None and actor.person_id == pid and table is not None
                    if joined and (actor.is_staff or self.room.cafe.tables[table].host_id == pid):
                        self.privileged.add((pid, table))
        self.room.apply(events)
        for event in events:
            self.client.receive(json.loads(render(self.room, event, VIEWER)))

    @rule(actor=st.sampled_from([HOST, *GUESTS]), message=commands)
    def participant(self, actor: Actor, message: dict) -> None:
        self.run(actor, message)

    @rule(message=moderator_commands | commands)
    def moderator(self, message: dict) -> None:
        if message["type"] == "cafe.table.add" and not self.room.cafe.tables:
            message = {**message, "host_id": HOST.person_id}
        self.run(MOD, message)

    @rule(seconds=st.sampled_from([10, 45, 100, 400]))
    def clock(self, seconds: int) -> None:
        self.now += seconds
        self.apply(cafe_room.tick(self.room, self.now))

    @invariant()
    def page_matches_a_fresh_snapshot(self) -> None:
        fresh = snapshot(self.room, VIEWER)
        mine = json.loads(json.dumps(self.client.view))
        fresh["cafe"].pop("now"), mine["cafe"].pop("now")
        assert mine == fresh

    @invariant()
    def seats_respected(self) -> None:
        cafe = self.room.cafe
        for table in cafe.tables.values():
            people = cafe.at_table(table.id)
            extra = sum(1 for pid in people if (pid, table.id) in self.privileged)
            assert len(people) <= table.seats or extra > 0, (table, people)
        assert set(cafe.seats.values()) <= set(cafe.tables)


CafeMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestCafe = CafeMachine.TestCase
