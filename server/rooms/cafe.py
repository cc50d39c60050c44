"""Knowledge cafés on the server: their storage (load and commit), the round clock, and the harvest.

The café's rules live in ``realtime.cafe_room``; this module gives them what needs I/O:

- ``load``/``commit``: the café's state, tables, seats (attendance per round and table) and notes, in the
  room's transaction, so that notes and seats survive a refresh and a restart.
- ``CafeDriver``: per café room one clock task that wakes at the round's warning and at its end
  (``cafe_room.tick``), and the stakeholder types and regions of the people present, read when they
  arrive, for the seating's mix.
- ``harvest``/``harvest_markdown``: the tables, their notes and key insights, as JSON and Markdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import combinations
from typing import TYPE_CHECKING, Any

from sqlmodel import Session as DbSession
from sqlmodel import col, select

from realtime import cafe as algo
from realtime import cafe_room
from realtime.log import Event
from realtime.room import Room
from server import geo
from server.storage.models import CafeNote, CafeRecord, CafeSeat, CafeTableRecord, Person, Session

if TYPE_CHECKING:
    from server.rooms.service import LiveRoom, RoomService

log = logging.getLogger("forumlive.cafe")

CAFE_TYPE = "knowledge_cafe"  # server.vocab.SessionType.KNOWLEDGE_CAFE


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


# Loading ----------------------------------------------------------------------------------------------------


def load(db: DbSession, room: Room) -> None:
    """Rebuild a café room's state from the database (its tables, phase, seats, notes, who has met whom)."""
    cafe = room.cafe
    assert cafe is not None
    sid = room.session_id
    record = db.get(CafeRecord, sid)
    if record is not None:
        cafe.phase, cafe.round = cafe_room.CafePhase(record.phase), record.round_no
        cafe.started_at, cafe.ends_at = _seconds(record.started_at), _seconds(record.ends_at)
        cafe.warned, cafe.reporting_table_id = record.warned, record.reporting_table_id
    tables = db.exec(select(CafeTableRecord).where(CafeTableRecord.session_id == sid).order_by(col(CafeTableRecord.id)))
    for t in tables.all():
        cafe.tables[t.id or 0] = algo.CafeTable(t.id or 0, t.topic, t.seats, t.host_id)
    seats = db.exec(select(CafeSeat).where(CafeSeat.session_id == sid)).all()
    ended = cafe.round if cafe.phase is not cafe_room.CafePhase.ROUND else cafe.round - 1
    together: dict[tuple[int, int], list[int]] = defaultdict(list)
    for seat in seats:
        if seat.left_at is None:
            cafe.seats[seat.person_id] = seat.table_id
        if seat.round_no <= ended:
            together[(seat.round_no, seat.table_id)].append(seat.person_id)
    for people in together.values():
        cafe.met |= {algo.pair(a, b) for a, b in combinations(set(people), 2)}
    notes = db.exec(
        select(CafeNote)
        .where(CafeNote.session_id == sid, col(CafeNote.deleted_at).is_(None))
        .order_by(col(CafeNote.id))
    ).all()
    for n in notes:
        cafe.notes[n.id or 0] = cafe_room.Note(
            n.id or 0,
            n.table_id,
            n.round_no,
            n.person_id or 0,
            n.name,
            n.text,
            n.insight,
            n.created_at.timestamp(),
            _seconds(n.edited_at),
        )
    wanted = set(cafe.seats) | {t.host_id for t in cafe.tables.values() if t.host_id is not None}
    if wanted:
        people = db.exec(select(Person).where(col(Person.id).in_(wanted))).all()
        room.load_names({p.id or 0: p.name for p in people})


def is_cafe(db: DbSession, session_id: int) -> bool:
    session = db.get(Session, session_id)
    return session is not None and session.type == CAFE_TYPE


def profiles(db: DbSession, person_ids: Iterable[int]) -> dict[int, tuple[str | None, str | None]]:
    """Stakeholder type and ITU region of each person (each only where its owner consented to keep it)."""
    ids = list(person_ids)
    if not ids:
        return {}
    people = db.exec(select(Person).where(col(Person.id).in_(ids))).all()
    return {p.id or 0: (p.stakeholder_type, geo.region_for(p.country)) for p in people}


# Committing ---------------------------------------------------------------------------------------------------


def _record(db: DbSession, session_id: int) -> CafeRecord:
    return db.get(CafeRecord, session_id) or CafeRecord(session_id=session_id)


def commit(db: DbSession, room: Room, event: Event, at: datetime) -> None:
    """Write one durable café event (ids of new tables and notes filled in)."""
    data, kind, sid = event.data, event.kind, room.session_id
    if kind == "cafe.table.added":
        t = data["table"]
        row = CafeTableRecord(session_id=sid, topic=t["topic"], seats=t["seats"], host_id=t["host_id"], created_at=at)
        db.add(row)
        db.flush()
        t["id"] = row.id
    elif kind == "cafe.seated":
        for move in data["moves"]:
            _move(db, sid, data["round"], move["person_id"], move["table_id"], at)
    elif kind == "cafe.round":
        record = _record(db, sid)
        record.phase = "round" if data["state"] == "running" else "break"
        record.round_no, record.warned = data["round"], data["warning"]
        record.started_at, record.ends_at, record.updated_at = _time(data["started_at"]), _time(data["ends_at"]), at
        db.add(record)
    elif kind == "cafe.plenary":
        record = _record(db, sid)
        record.phase, record.reporting_table_id, record.updated_at = "plenary", data["reporting_table_id"], at
        db.add(record)
    elif kind == "cafe.note":
        _note(db, sid, data, at)
    else:
        raise ValueError(f"no storage for café event {kind!r}")


def _move(db: DbSession, sid: int, round_no: int, person_id: int, table_id: int | None, at: datetime) -> None:
    open_seats = db.exec(
        select(CafeSeat).where(
            CafeSeat.session_id == sid, CafeSeat.person_id == person_id, col(CafeSeat.left_at).is_(None)
        )
    ).all()
    for seat in open_seats:
        seat.left_at = at
        db.add(seat)
    if table_id is not None:
        db.add(CafeSeat(session_id=sid, round_no=round_no, table_id=table_id, person_id=person_id, seated_at=at))


def _note(db: DbSession, sid: int, data: dict[str, Any], at: datetime) -> None:
    note = data["note"]
    if data["action"] == "added":
        row = CafeNote(
            session_id=sid,
            table_id=note["table_id"],
            round_no=note["round"],
            person_id=note["person_id"],
            name=note["name"],
            text=note["text"],
            created_at=at,
        )
        db.add(row)
        db.flush()
        note["id"] = row.id
        return
    row = db.get(CafeNote, note["id"])
    if row is None or row.session_id != sid:
        return
    if data["action"] == "edited":
        row.text, row.edited_at = note["text"], at
    elif data["action"] == "insight":
        row.insight = note["insight"]
    else:
        row.deleted_at = at
    db.add(row)


# The clock and the people's profiles ------------------------------------------------------------------------


class CafeDriver:
    """What the café rooms of one process need from outside the room: a clock, and who people are."""

    def __init__(self, service: RoomService) -> None:
        self.service = service
        self.clocks: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_events(self, live: LiveRoom, events: list[Event]) -> None:
        """Called with every batch a room broadcasts: arrivals get their profiles read; a round that
        starts, changes or ends resets the room's clock."""
        room = live.room
        if room.cafe is None:
            return
        joined = [p["id"] for e in events if e.kind == "presence.changed" for p in e.data["joined"]]
        if joined:
            self._spawn(self._load_profiles(room, joined))
        if any(e.kind == "cafe.round" for e in events):
            self._set_clock(live)  # a round started, changed or ended
        elif joined and (room.session_id not in self.clocks or self.clocks[room.session_id].done()):
            self._set_clock(live)  # someone arrived in a room rebuilt with a running round

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load_profiles(self, room: Room, people: list[int]) -> None:
        found = await self.service.database.read(profiles, people)
        if room.cafe is not None:
            room.cafe.profiles.update(found)

    def _set_clock(self, live: LiveRoom) -> None:
        sid = live.room.session_id
        clock = self.clocks.get(sid)
        if clock is not None and not clock.done():
            if clock is asyncio.current_task():
                return  # the clock itself ended the round; its loop looks again
            clock.cancel()
        cafe = live.room.cafe
        # With several processes (server/rooms/shared.py) only the room's owner keeps its clock.
        owner = getattr(live, "owner", True)
        if cafe is not None and cafe.phase is cafe_room.CafePhase.ROUND and owner:
            self.clocks[sid] = asyncio.create_task(self._run_clock(live))

    async def _run_clock(self, live: LiveRoom) -> None:
        cafe = live.room.cafe
        while cafe is not None and cafe.phase is cafe_room.CafePhase.ROUND and cafe.ends_at is not None:
            warn_at = cafe.warning_at()
            wake = cafe.ends_at if cafe.warned or warn_at is None else min(warn_at, cafe.ends_at)
            await asyncio.sleep(max(0.0, wake - time.time()))
            async with live.lock:
                now = time.time()
                try:
                    # Rotating hundreds of people takes a fraction of a second: off the event loop (the room's
                    # lock keeps its state still meanwhile).
                    events = await asyncio.to_thread(cafe_room.tick, live.room, now)
                    await self.service._commit_and_send(live, events, now)
                except Exception:
                    log.exception("café clock of session %s", live.room.session_id)
                    await asyncio.sleep(1.0)

    async def stop(self) -> None:
        tasks = [*self.clocks.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


# The harvest ------------------------------------------------------------------------------------------------------


def harvest(db: DbSession, session_id: int) -> dict[str, Any]:
    """Every table with its topic, host, the people who sat there per round, and its notes (insights first)."""
    session = db.get(Session, session_id)
    tables = db.exec(
        select(CafeTableRecord).where(CafeTableRecord.session_id == session_id).order_by(col(CafeTableRecord.id))
    ).all()
    notes = db.exec(
        select(CafeNote)
        .where(CafeNote.session_id == session_id, col(CafeNote.deleted_at).is_(None))
        .order_by(col(CafeNote.id))
    ).all()
    seats = db.exec(select(CafeSeat).where(CafeSeat.session_id == session_id)).all()
    host_ids = {t.host_id for t in tables if t.host_id is not None}
    names = (
        {p.id: p.name for p in db.exec(select(Person).where(col(Person.id).in_(host_ids))).all()} if host_ids else {}
    )
    rounds: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for seat in seats:
        rounds[seat.table_id][seat.round_no].add(seat.person_id)
    out = []
    for t in tables:
        own = [n for n in notes if n.table_id == t.id]
        out.append(
            {
                "id": t.id,
                "topic": t.topic,
                "host": names.get(t.host_id) if t.host_id is not None else None,
                "people_per_round": {str(r): len(p) for r, p in sorted(rounds[t.id or 0].items())},
                "insights": [_note_data(n) for n in own if n.insight],
                "notes": [_note_data(n) for n in own if not n.insight],
            }
        )
    return {"session_id": session_id, "title": session.title if session else "", "tables": out}


def _note_data(note: CafeNote) -> dict[str, Any]:
    return {"id": note.id, "round": note.round_no, "author": note.name, "text": note.text}


def harvest_markdown(data: dict[str, Any]) -> str:
    """The harvest as Markdown: a section per table, key insights then the other notes."""

    def text(value: str) -> str:
        # Notes are people's words: keep them from turning into headings, links or HTML.
        escaped = "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in value)
        return " ".join(escaped.split())

    lines = [f"# Harvest: {text(data['title'])}", ""]
    for table in data["tables"]:
        host = f" (host: {text(table['host'])})" if table["host"] else ""
        lines += [f"## Table {table['id']}: {text(table['topic'])}{host}", ""]
        if table["insights"]:
            lines += ["Key insights:", ""] + [
                f"- **{text(n['text'])}** — {text(n['author'])}" for n in table["insights"]
            ]
            lines.append("")
        if table["notes"]:
            lines += ["Notes:", ""] + [f"- {text(n['text'])} — {text(n['author'])}" for n in table["notes"]]
            lines.append("")
        if not table["insights"] and not table["notes"]:
            lines += ["No notes.", ""]
    return "\n".join(lines)
