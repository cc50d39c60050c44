"""A knowledge café inside a room: tables, who sits where, timed rounds, notes, broadcast and plenary.

Part of the room state machine (``realtime.room`` hands every ``cafe.*`` command and event here):
``decide`` checks a command and returns events, changing nothing; ``apply`` is where the café's state
changes. ``tick`` is the server's clock: the warning before a round ends, and the end (with rotation)
at the deadline. Seating and rotation themselves are the pure functions of ``realtime.cafe``.

Phases (``CafePhase``), changed only by ``cafe.round`` and ``cafe.plenary`` events::

    setup ──round.start──▶ round ──end (deadline or moderator)──▶ break ──round.start──▶ round ...
      └──────────────┴──────────────── plenary ◀──────────────────────┘
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from realtime import cafe as algo
from realtime import protocol as p
from realtime.log import Event

if TYPE_CHECKING:
    from realtime.room import Actor, Room

TABLE_CHAT_KEPT = 500  # table chat lines kept in memory, all tables together
# The warning comes this long before a round ends (a quarter of the round when that is shorter).
WARNING_S = 60.0
# A shortened round still lasts this long from now (to end at once, end it).
MIN_LEFT_S = 5.0


class CafePhase(StrEnum):
    SETUP = "setup"  # tables being laid, free seating, no round yet
    ROUND = "round"  # a round is running
    BREAK = "break"  # between rounds: people have moved to their next table
    PLENARY = "plenary"  # every table's key insights on one board, tables report back in turn


@dataclass
class Note:
    id: int
    table_id: int
    round: int
    person_id: int
    name: str
    text: str
    insight: bool
    at: float
    edited_at: float | None = None

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CafeState:
    """What a café room holds besides the room itself."""

    tables: dict[int, algo.CafeTable] = field(default_factory=dict)
    seats: dict[int, int] = field(default_factory=dict)  # person -> table
    phase: CafePhase = CafePhase.SETUP
    round: int = 0  # the round running, or the last one run
    started_at: float | None = None
    ends_at: float | None = None
    warned: bool = False
    notes: dict[int, Note] = field(default_factory=dict)
    chat: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TABLE_CHAT_KEPT))
    met: set[algo.Pair] = field(default_factory=set)  # pairs who sat together at the end of a round
    broadcaster: int | None = None
    reporting_table_id: int | None = None
    # Stakeholder type and region of people, for mixing (filled by the server before seating).
    profiles: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)

    def seat_round(self) -> int:
        """The round that seat changes count for: the one running, else the next one."""
        return self.round if self.phase is CafePhase.ROUND else self.round + 1

    def at_table(self, table_id: int) -> list[int]:
        return sorted(pid for pid, tid in self.seats.items() if tid == table_id)

    def seating(self) -> algo.Seating:
        return {tid: tuple(self.at_table(tid)) for tid in self.tables}

    def host_of(self, table_id: int) -> int | None:
        return self.tables[table_id].host_id

    def warning_at(self) -> float | None:
        if self.started_at is None or self.ends_at is None:
            return None
        return self.ends_at - min(WARNING_S, (self.ends_at - self.started_at) / 4)


def _error(code: str, message: str) -> Exception:
    from realtime.room import RoomError

    return RoomError(code, message)


def _staff(actor: Actor) -> None:
    if not actor.is_staff:
        raise _error("forbidden", "only moderators may do this")


def _table(cafe: CafeState, table_id: int) -> algo.CafeTable:
    table = cafe.tables.get(table_id)
    if table is None:
        raise _error("not_found", f"no table {table_id} in this café")
    return table


def table_data(room: Room, table: algo.CafeTable) -> dict[str, Any]:
    host = room.names.get(table.host_id, f"Person {table.host_id}") if table.host_id is not None else None
    return {"id": table.id, "topic": table.topic, "seats": table.seats, "host_id": table.host_id, "host": host}


def _moves(room: Room, cafe: CafeState, target: dict[int, int | None], round_no: int | None = None) -> list[Event]:
    """A ``cafe.seated`` event for the people whose table changes (``None``: no table), counted for
    ``round_no`` (default: the round running, else the next)."""
    moves = [
        {"person_id": pid, "name": room.names.get(pid, f"Person {pid}"), "table_id": tid}
        for pid, tid in sorted(target.items())
        if cafe.seats.get(pid) != tid
    ]
    if not moves:
        return []
    return [Event("cafe.seated", {"round": round_no or cafe.seat_round(), "moves": moves})]


def _round_event(cafe: CafeState, number: int, state: str, started: float, ends: float, now: float, **extra: Any):
    data = {"round": number, "state": state, "started_at": started, "ends_at": ends, "warning": False, "now": now}
    return Event("cafe.round", {**data, **extra})


# Who moves --------------------------------------------------------------------------------------------


def _guests(room: Room, cafe: CafeState, people: list[int]) -> list[algo.Guest]:
    return [algo.Guest(pid, *cafe.profiles.get(pid, (None, None))) for pid in people]


def _present_for_seating(room: Room, cafe: CafeState) -> list[int]:
    """Everyone present but the moderators and organizers who host no table."""
    hosts = {t.host_id for t in cafe.tables.values()}
    return sorted(
        pid for pid, m in room.members.items() if m.role.value not in ("organizer", "moderator") or pid in hosts
    )


def _target(cafe: CafeState, seating: algo.Seating, people: list[int]) -> dict[int, int | None]:
    target: dict[int, int | None] = {pid: None for pid in cafe.seats}
    for tid, members in seating.items():
        for pid in members:
            target[pid] = tid
    for pid in people:
        target.setdefault(pid, None)
    return target


def _rotation(room: Room, cafe: CafeState, met: set[algo.Pair] | None = None) -> dict[int, int | None]:
    """Everyone seated and present moves on (hosts stay); people who left lose their seat. ``met``: the
    pairs to avoid (default: those of the rounds ended so far).

    Raises:
        RoomError: ``not_enough_seats`` (more people than seats) or ``invalid``.
    """
    people = [pid for pid in cafe.seats if pid in room.members]
    try:
        guests = _guests(room, cafe, people)
        seating = algo.rotate(list(cafe.tables.values()), guests, cafe.seating(), cafe.met if met is None else met)
    except algo.NotEnoughSeats as exc:
        raise _error("not_enough_seats", f"cannot rotate: {exc}") from None
    except algo.CafeError as exc:
        raise _error("invalid", str(exc)) from None
    return _target(cafe, seating, people)


# Commands ---------------------------------------------------------------------------------------------


def decide(room: Room, actor: Actor, command: p.CafeCommand, now: float) -> list[Event]:
    """The events a ``cafe.*`` command causes; raises ``RoomError``. Changes nothing."""
    cafe = room.cafe
    if cafe is None:
        raise _error("invalid", "this session is not a knowledge café")
    handler = _HANDLERS[type(command)]
    return handler(room, cafe, actor, command, now)


def _on_table_add(room: Room, cafe: CafeState, actor: Actor, command: p.AddCafeTable, now: float) -> list[Event]:
    _staff(actor)
    if cafe.phase is CafePhase.PLENARY:
        raise _error("invalid", "the café is in plenary")
    if command.host_id is not None and any(t.host_id == command.host_id for t in cafe.tables.values()):
        raise _error("invalid", "that person already hosts a table")
    table = algo.CafeTable(0, command.topic, command.seats, command.host_id)
    return [
        Event("cafe.table.added", {"table": table_data(room, table)}),
        room._moderated(actor, "cafe.table.add", now, command.host_id, topic=command.topic),
    ]


def _on_join(room: Room, cafe: CafeState, actor: Actor, command: p.JoinCafeTable, now: float) -> list[Event]:
    table = _table(cafe, command.table_id)
    if cafe.phase is CafePhase.PLENARY:
        raise _error("invalid", "the café is in plenary: tables are closed")
    if cafe.seats.get(actor.person_id) == table.id:
        return []
    privileged = actor.is_staff or table.host_id == actor.person_id
    if len(cafe.at_table(table.id)) >= table.seats and not privileged:
        raise _error("table_full", f"table {table.id} ({table.topic}) is full")
    return _moves(room, cafe, {actor.person_id: table.id})


def _on_leave(room: Room, cafe: CafeState, actor: Actor, command: p.LeaveCafeTable, now: float) -> list[Event]:
    return _moves(room, cafe, {actor.person_id: None})


def _between_rounds(cafe: CafeState, what: str) -> None:
    if cafe.phase is CafePhase.ROUND:
        raise _error("invalid", f"{what} between rounds, not during one")
    if cafe.phase is CafePhase.PLENARY:
        raise _error("invalid", "the café is in plenary")
    if not cafe.tables:
        raise _error("invalid", "lay the tables first")


def _on_seat(room: Room, cafe: CafeState, actor: Actor, command: p.SeatCafe, now: float) -> list[Event]:
    _staff(actor)
    _between_rounds(cafe, "seat people")
    people = _present_for_seating(room, cafe)
    try:
        seating = algo.seat(list(cafe.tables.values()), _guests(room, cafe, people))
    except algo.NotEnoughSeats as exc:
        raise _error("not_enough_seats", f"cannot seat everyone: {exc}") from None
    events = _moves(room, cafe, _target(cafe, seating, people))
    return [*events, room._moderated(actor, "cafe.seat", now, people=len(people))]


def _on_rotate(room: Room, cafe: CafeState, actor: Actor, command: p.RotateCafe, now: float) -> list[Event]:
    _staff(actor)
    _between_rounds(cafe, "rotate")
    events = _moves(room, cafe, _rotation(room, cafe))
    return [*events, room._moderated(actor, "cafe.rotate", now)]


def _on_round_start(room: Room, cafe: CafeState, actor: Actor, command: p.StartCafeRound, now: float) -> list[Event]:
    _staff(actor)
    _between_rounds(cafe, "start a round")
    number = cafe.round + 1
    event = _round_event(cafe, number, "running", now, now + command.duration_s, now)
    return [event, room._moderated(actor, "cafe.round.start", now, round=number, duration_s=command.duration_s)]


def _running(cafe: CafeState) -> None:
    if cafe.phase is not CafePhase.ROUND:
        what = f"round {cafe.round} has ended" if cafe.round else "no round has started"
        raise _error("round_ended", what)


def _on_round_adjust(room: Room, cafe: CafeState, actor: Actor, command: p.AdjustCafeRound, now: float) -> list[Event]:
    _staff(actor)
    _running(cafe)
    assert cafe.started_at is not None and cafe.ends_at is not None
    ends = cafe.ends_at + command.delta_s
    if ends < now + MIN_LEFT_S:
        raise _error("invalid", f"the round would have under {MIN_LEFT_S:.0f} s left; end it instead")
    event = _round_event(cafe, cafe.round, "running", cafe.started_at, ends, now)
    warn_at = ends - min(WARNING_S, (ends - cafe.started_at) / 4)
    event.data["warning"] = cafe.warned and now >= warn_at
    return [event, room._moderated(actor, "cafe.round.adjust", now, round=cafe.round, delta_s=command.delta_s)]


def _on_round_end(room: Room, cafe: CafeState, actor: Actor, command: p.EndCafeRound, now: float) -> list[Event]:
    _staff(actor)
    _running(cafe)
    return [*end_round(room, cafe, now), room._moderated(actor, "cafe.round.end", now, round=cafe.round)]


def end_round(room: Room, cafe: CafeState, now: float) -> list[Event]:
    """The running round ends now; then everyone but the hosts moves on. When that is impossible (more
    people than seats) the round still ends, people stay where they are and the event says why."""
    assert cafe.started_at is not None
    ended = _round_event(cafe, cafe.round, "ended", cafe.started_at, now, now)
    # The rotation counts this round's encounters too (applying ``ended`` adds them to ``cafe.met``).
    from realtime.room import RoomError

    met = cafe.met | algo.encounters(cafe.seating())
    try:
        moves = _moves(room, cafe, _rotation(room, cafe, met), cafe.round + 1)
    except RoomError as exc:  # more people than seats
        ended.data["rotation_error"] = exc.message
        moves = []
    return [ended, *moves]


def tick(room: Room, now: float | None = None) -> list[Event]:
    """The café's clock: the warning before the end of a round, then its end. Changes nothing."""
    cafe = room.cafe
    now = time.time() if now is None else now
    if cafe is None or cafe.phase is not CafePhase.ROUND or cafe.ends_at is None or cafe.started_at is None:
        return []
    if now >= cafe.ends_at:
        return end_round(room, cafe, now)
    warn_at = cafe.warning_at()
    if not cafe.warned and warn_at is not None and now >= warn_at:
        event = _round_event(cafe, cafe.round, "running", cafe.started_at, cafe.ends_at, now)
        event.data["warning"] = True
        return [event]
    return []


def _seat_of(cafe: CafeState, actor: Actor) -> int:
    table_id = cafe.seats.get(actor.person_id)
    if table_id is None:
        raise _error("not_at_table", "sit at a table first")
    return table_id


def _on_chat(room: Room, cafe: CafeState, actor: Actor, command: p.SendCafeChat, now: float) -> list[Event]:
    if actor.person_id in room.muted:
        raise _error("muted", "a moderator has muted you in the chat")
    table_id = _seat_of(cafe, actor)
    data = {"table_id": table_id, "person_id": actor.person_id, "name": actor.name, "text": command.text, "at": now}
    return [Event("cafe.chat.posted", data, durable=False)]


def _on_note_add(room: Room, cafe: CafeState, actor: Actor, command: p.AddCafeNote, now: float) -> list[Event]:
    own = cafe.seats.get(actor.person_id)
    table_id = command.table_id if command.table_id is not None else own
    if table_id is None:
        raise _error("not_at_table", "sit at a table first")
    _table(cafe, table_id)
    if table_id != own and not actor.is_staff:
        raise _error("not_at_table", f"only people at table {table_id} may add to its notes")
    note = Note(0, table_id, cafe.round, actor.person_id, actor.name, command.text, False, now)
    return [Event("cafe.note", {"action": "added", "note": note.to_data()})]


def _note(room: Room, cafe: CafeState, actor: Actor, note_id: int) -> Note:
    note = cafe.notes.get(note_id)
    if note is None:
        raise _error("not_found", f"no note {note_id} in this café")
    if cafe.seats.get(actor.person_id) != note.table_id and not actor.is_staff:
        raise _error("not_at_table", f"only people at table {note.table_id} may change its notes")
    return note


def _on_note_edit(room: Room, cafe: CafeState, actor: Actor, command: p.EditCafeNote, now: float) -> list[Event]:
    note = _note(room, cafe, actor, command.note_id)
    changed = {**note.to_data(), "text": command.text, "edited_at": now}
    return [Event("cafe.note", {"action": "edited", "note": changed, "by": actor.person_id})]


def _on_note_delete(room: Room, cafe: CafeState, actor: Actor, command: p.DeleteCafeNote, now: float) -> list[Event]:
    note = _note(room, cafe, actor, command.note_id)
    return [Event("cafe.note", {"action": "deleted", "note": {"id": note.id, "table_id": note.table_id}})]


def _on_note_insight(room: Room, cafe: CafeState, actor: Actor, command: p.MarkCafeInsight, now: float) -> list[Event]:
    note = cafe.notes.get(command.note_id)
    if note is None:
        raise _error("not_found", f"no note {command.note_id} in this café")
    if not actor.is_staff and cafe.host_of(note.table_id) != actor.person_id:
        raise _error("forbidden", "only the table's host marks key insights")
    if note.insight == command.insight:
        return []
    return [Event("cafe.note", {"action": "insight", "note": {**note.to_data(), "insight": command.insight}})]


def _on_broadcast(room: Room, cafe: CafeState, actor: Actor, command: p.CafeBroadcast, now: float) -> list[Event]:
    """A moderator speaks to every table (taking over from another), or any moderator ends the broadcast."""
    _staff(actor)
    if command.on:
        if cafe.broadcaster == actor.person_id:
            return []
        data = {"person_id": actor.person_id, "name": actor.name, "on": True}
    else:
        if cafe.broadcaster is None:
            return []
        name = room.names.get(cafe.broadcaster, f"Person {cafe.broadcaster}")
        data = {"person_id": cafe.broadcaster, "name": name, "on": False}
    return [Event("cafe.broadcast", data, durable=False)]


def _on_plenary(room: Room, cafe: CafeState, actor: Actor, command: p.CafePlenary, now: float) -> list[Event]:
    _staff(actor)
    if cafe.phase is CafePhase.ROUND:
        raise _error("invalid", "end the round before the plenary")
    if command.table_id is not None:
        _table(cafe, command.table_id)
    events = [Event("cafe.plenary", {"reporting_table_id": command.table_id})]
    # The table reporting back speaks from the stage, where every table hears it: its host steps up and
    # the previous reporter's host steps down (a table without a host present: the moderator invites someone).
    before = cafe.host_of(cafe.reporting_table_id) if cafe.reporting_table_id in cafe.tables else None
    now_host = cafe.host_of(command.table_id) if command.table_id is not None else None
    if before is not None and before != now_host and before in room.stage:
        events.append(Event("stage.left", {"person_id": before}))
    if now_host is not None and now_host in room.members and now_host not in room.stage:
        events.append(Event("stage.joined", {"person_id": now_host, "name": room.members[now_host].name}))
    return [*events, room._moderated(actor, "cafe.plenary", now, table_id=command.table_id)]


_HANDLERS: dict[type, Any] = {
    p.AddCafeTable: _on_table_add,
    p.JoinCafeTable: _on_join,
    p.LeaveCafeTable: _on_leave,
    p.SeatCafe: _on_seat,
    p.RotateCafe: _on_rotate,
    p.StartCafeRound: _on_round_start,
    p.AdjustCafeRound: _on_round_adjust,
    p.EndCafeRound: _on_round_end,
    p.SendCafeChat: _on_chat,
    p.AddCafeNote: _on_note_add,
    p.EditCafeNote: _on_note_edit,
    p.DeleteCafeNote: _on_note_delete,
    p.MarkCafeInsight: _on_note_insight,
    p.CafeBroadcast: _on_broadcast,
    p.CafePlenary: _on_plenary,
}


# The one place where the café changes --------------------------------------------------------------------


def apply(room: Room, event: Event) -> None:
    cafe = room.cafe
    assert cafe is not None, "café events in a room that is not a café"
    data = event.data
    kind = event.kind
    if kind == "cafe.table.added":
        t = data["table"]
        cafe.tables[t["id"]] = algo.CafeTable(t["id"], t["topic"], t["seats"], t["host_id"])
    elif kind == "cafe.seated":
        for move in data["moves"]:
            room.names.setdefault(move["person_id"], move["name"])
            if move["table_id"] is None:
                cafe.seats.pop(move["person_id"], None)
            else:
                cafe.seats[move["person_id"]] = move["table_id"]
    elif kind == "cafe.round":
        if data["state"] == "ended":
            cafe.met |= algo.encounters(cafe.seating())
        cafe.phase = CafePhase.ROUND if data["state"] == "running" else CafePhase.BREAK
        cafe.round, cafe.started_at, cafe.ends_at = data["round"], data["started_at"], data["ends_at"]
        cafe.warned = data["warning"]
    elif kind == "cafe.note":
        _apply_note(cafe, data)
    elif kind == "cafe.chat.posted":
        cafe.chat.append(data)
    elif kind == "cafe.broadcast":
        cafe.broadcaster = data["person_id"] if data["on"] else None
    elif kind == "cafe.plenary":
        cafe.phase, cafe.reporting_table_id = CafePhase.PLENARY, data["reporting_table_id"]
    else:
        raise ValueError(f"no café event {kind!r}")


def _apply_note(cafe: CafeState, data: dict[str, Any]) -> None:
    note = data["note"]
    if data["action"] == "deleted":
        cafe.notes.pop(note["id"], None)
    else:
        cafe.notes[note["id"]] = Note(**note)


# Views ------------------------------------------------------------------------------------------------------

EVENT_KINDS = frozenset(
    {"cafe.table.added", "cafe.seated", "cafe.round", "cafe.note", "cafe.chat.posted", "cafe.broadcast", "cafe.plenary"}
)
DURABLE_KINDS = frozenset({"cafe.table.added", "cafe.seated", "cafe.round", "cafe.note", "cafe.plenary"})


def snapshot(room: Room) -> dict[str, Any] | None:
    """The café as everyone sees it (notes and table chat are open to the whole room: the harvest is public)."""
    cafe = room.cafe
    if cafe is None:
        return None
    broadcaster = cafe.broadcaster
    return {
        "phase": cafe.phase.value,
        "round": cafe.round,
        "started_at": cafe.started_at,
        "ends_at": cafe.ends_at,
        "warning": cafe.warned,
        "now": time.time(),
        "tables": [table_data(room, t) for t in sorted(cafe.tables.values(), key=lambda t: t.id)],
        "seated": [
            {"person_id": pid, "name": room.names.get(pid, f"Person {pid}"), "table_id": tid}
            for pid, tid in sorted(cafe.seats.items())
        ],
        "notes": [n.to_data() for n in sorted(cafe.notes.values(), key=lambda n: n.id)],
        "chat": list(cafe.chat),
        "broadcast": None
        if broadcaster is None
        else {"person_id": broadcaster, "name": room.names.get(broadcaster, f"Person {broadcaster}")},
        "reporting_table_id": cafe.reporting_table_id,
    }


# Who hears whom (the media relay asks) ------------------------------------------------------------------


def may_publish(room: Room, person_id: int) -> bool:
    """Whether someone may send their microphone: on stage; in a café also at a table, or broadcasting."""
    if person_id in room.stage:
        return True
    cafe = room.cafe
    return cafe is not None and (person_id in cafe.seats or cafe.broadcaster == person_id)


def audible(room: Room, listener: int, speaker: int) -> bool:
    """Whether ``listener`` hears ``speaker``. Everyone hears the stage; in a café a table hears only
    itself, and a moderator's broadcast reaches every table."""
    cafe = room.cafe
    if cafe is None or speaker in room.stage or speaker == cafe.broadcaster:
        return True
    table = cafe.seats.get(speaker)
    return table is not None and cafe.seats.get(listener) == table
