"""Attendance visits: continued within the grace period, refreshed by heartbeats, closed after a crash."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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
