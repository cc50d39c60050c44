"""Attendance visits: continued within the grace period, refreshed by heartbeats, closed after a crash."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from server import attendance
from server.storage import migrate
from server.storage.db import Database
from server.storage.models import AttendanceVisit, Forum, Person, Session

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _database(tmp_path: Path) -> tuple[Database, int, int]:
    database = Database(f"sqlite:///{tmp_path}/a.db")
    migrate.upgrade(database.engine)

    def seed(db):  # noqa: ANN001, ANN202
        forum = Forum(slug="f", name="F", start_date=date(2026, 3, 1), end_date=date(2026, 3, 5))
        person = Person(email="a@example.org", password_hash="x", name="A")
        db.add_all([forum, person])
        db.flush()
        session = Session(
            forum_id=forum.id, code="S", title="S", type="talkx", starts_at=T0, ends_at=T0 + timedelta(hours=1)
        )
        db.add(session)
        db.flush()
        return session.id, person.id

    session_id, person_id = database.run_write(seed)
    return database, session_id, person_id


def _visits(database: Database) -> list[AttendanceVisit]:
    return database.run_read(lambda db: db.exec(select(AttendanceVisit).order_by(AttendanceVisit.id)).all())


def test_reconnect_within_grace_continues_the_visit(tmp_path: Path) -> None:
    """Leaving and coming back 30 s later is one visit; 90 s later it is a second visit."""
    database, sid, pid = _database(tmp_path)
    first = database.run_write(attendance.open_visit, sid, pid, "live", T0)
    database.run_write(attendance.close_visit, first, T0 + timedelta(minutes=10))
    again = database.run_write(attendance.open_visit, sid, pid, "live", T0 + timedelta(minutes=10, seconds=30))
    assert again == first and _visits(database)[0].left_at is None
    database.run_write(attendance.close_visit, first, T0 + timedelta(minutes=20))
    later = database.run_write(attendance.open_visit, sid, pid, "live", T0 + timedelta(minutes=21, seconds=30))
    assert later != first
    visits = _visits(database)
    assert [(v.joined_at, v.left_at) for v in visits] == [
        (T0, T0 + timedelta(minutes=20)),
        (T0 + timedelta(minutes=21, seconds=30), None),
    ]
    other_channel = database.run_write(attendance.open_visit, sid, pid, "lite", T0 + timedelta(minutes=22))
    assert other_channel not in (first, later)
    database.dispose()


def test_heartbeats_and_crash_recovery(tmp_path: Path) -> None:
    """Heartbeats move last_seen_at; open visits are closed at their last heartbeat on start-up."""
    database, sid, pid = _database(tmp_path)
    visit = database.run_write(attendance.open_visit, sid, pid, "live", T0)
    database.run_write(attendance.touch_visits, [visit], T0 + timedelta(minutes=5))
    assert database.run_write(attendance.close_stale_visits) == 1
    (closed,) = _visits(database)
    assert closed.last_seen_at == closed.left_at == T0 + timedelta(minutes=5)
    assert database.run_write(attendance.close_stale_visits) == 0
    database.dispose()


def test_sweep_of_a_dead_process_closes_only_stale_room_visits(tmp_path: Path) -> None:
    """With several processes: only room visits not refreshed since the cutoff close, at their last heartbeat;
    fresh ones and other channels stay open."""
    database, sid, pid = _database(tmp_path)
    other = database.run_write(
        lambda db: _add_person(db, "b@example.org"),
    )
    stale = database.run_write(attendance.open_visit, sid, pid, "live", T0)
    fresh = database.run_write(attendance.open_visit, sid, other, "live", T0)
    lite = database.run_write(attendance.open_visit, sid, pid, "lite", T0)
    database.run_write(attendance.touch_visits, [fresh], T0 + timedelta(seconds=20))
    cutoff = T0 + timedelta(seconds=15)
    assert database.run_write(attendance.close_stale_visits, cutoff, "live") == 1
    by_id = {v.id: v for v in _visits(database)}
    assert by_id[stale].left_at == T0
    assert by_id[fresh].left_at is None and by_id[lite].left_at is None
    database.dispose()


def _add_person(db, email: str) -> int:  # noqa: ANN001
    person = Person(email=email, password_hash="x", name=email)
    db.add(person)
    db.flush()
    return person.id


def _peak(database: Database, session_id: int) -> int:
    from server.storage.models import SessionStats

    stats = database.run_read(lambda db: db.get(SessionStats, session_id))
    return stats.peak_concurrent if stats else 0


def test_a_batch_counts_the_peak_as_changes_one_by_one_would(tmp_path: Path) -> None:
    """Two arrive and one leaves in one transaction: the peak is 2, not the 1 open at the end."""
    database, sid, pid = _database(tmp_path)
    other = database.run_write(lambda db: _add_person(db, "b@example.org"))
    first, second = database.run_write(
        attendance.apply_visits, [("open", (sid, pid, "live", T0)), ("open", (sid, other, "live", T0))]
    )
    assert first is not None and second is not None and first != second
    database.run_write(attendance.apply_visits, [("close", (first, T0 + timedelta(minutes=1)))])
    assert _peak(database, sid) == 2
    # Closing and opening again in one batch: the peak stays what it was; the person's time is counted.
    third = database.run_write(lambda db: _add_person(db, "c@example.org"))
    database.run_write(
        attendance.apply_visits,
        [("open", (sid, third, "live", T0 + timedelta(minutes=2))), ("close", (second, T0 + timedelta(minutes=3)))],
    )
    assert _peak(database, sid) == 2
    by_id = {v.id: v for v in _visits(database)}
    assert by_id[second].left_at == T0 + timedelta(minutes=3)
    database.dispose()


def test_visit_book_writes_an_arriving_audience_in_few_transactions(tmp_path: Path) -> None:
    """200 people joining at once: each gets their own visit, in far fewer transactions than people, with the
    peak at 200; a change that cannot be written (an unknown session) fails alone."""
    import asyncio

    from server.rooms.visits import VisitBook

    database, sid, _ = _database(tmp_path)
    people = database.run_write(lambda db: [_add_person(db, f"p{i}@example.org") for i in range(200)])
    book = VisitBook(database)

    async def arrive() -> list[int | BaseException]:
        opens = [book.open(sid, person, "live", T0) for person in people[:100]]
        bad = book.open(sid + 1000, people[100], "live", T0)
        more = [book.open(sid, person, "live", T0) for person in people[100:]]
        return await asyncio.gather(*opens, bad, *more, return_exceptions=True)

    results = asyncio.run(arrive())
    bad = results.pop(100)
    assert isinstance(bad, Exception)
    assert all(isinstance(r, int) for r in results) and len(set(results)) == 200
    assert 1 <= book.batches <= 20  # one bad change costs about two transactions per halving
    assert _peak(database, sid) == 200
    visits = _visits(database)
    assert sorted(v.person_id for v in visits) == sorted(people)
    assert {v.session_id for v in visits} == {sid}

    async def leave() -> None:
        await asyncio.gather(*(book.close(visit_id, T0 + timedelta(minutes=5)) for visit_id in results))

    asyncio.run(leave())
    assert all(v.left_at == T0 + timedelta(minutes=5) for v in _visits(database))
    # Each attendee's time, added as their visits closed together: five minutes of the session's slot.
    from server.storage.models import SessionAttendee

    attendees = database.run_read(lambda db: db.exec(select(SessionAttendee)).all())
    assert len(attendees) == 200 and {a.attended_s for a in attendees} == {300.0}
    database.dispose()


@pytest.mark.postgres
def test_two_processes_opening_the_same_people_at_once_share_one_visit_each(postgres_url: str) -> None:
    """Two processes (two engines on one PostgreSQL) each open visits for the same 60 people at once, in
    opposite orders: every person ends with one open visit, which both processes were given."""
    import asyncio

    from server.rooms.visits import VisitBook

    first = Database(postgres_url)
    migrate.upgrade(first.engine)
    second = Database(postgres_url)

    def seed(db):  # noqa: ANN001, ANN202
        forum = Forum(slug="f", name="F", start_date=date(2026, 3, 1), end_date=date(2026, 3, 5))
        db.add(forum)
        db.flush()
        session = Session(
            forum_id=forum.id, code="S", title="S", type="talkx", starts_at=T0, ends_at=T0 + timedelta(hours=1)
        )
        db.add(session)
        db.flush()
        return session.id, [_add_person(db, f"p{i}@example.org") for i in range(60)]

    sid, people = first.run_write(seed)
    books = VisitBook(first), VisitBook(second)

    async def arrive() -> tuple[list[int], list[int]]:
        a = [books[0].open(sid, person, "live", T0) for person in people]
        b = [books[1].open(sid, person, "live", T0) for person in reversed(people)]
        got_a, got_b = await asyncio.gather(asyncio.gather(*a), asyncio.gather(*b))
        return got_a, list(reversed(got_b))

    got_a, got_b = asyncio.run(arrive())
    assert got_a == got_b
    visits = _visits(first)
    assert len(visits) == 60 and sorted(v.person_id for v in visits) == sorted(people)
    assert all(v.left_at is None for v in visits)
    assert _peak(first, sid) == 60
    first.dispose()
    second.dispose()
