"""Storage: migrations on SQLite and a real PostgreSQL, time-zone-aware columns, constraints."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel, select

from server.storage import migrate
from server.storage.db import Database
from server.storage.models import Forum, Person, Registration, Session

TABLES = {
    "forum",
    "session",
    "session_action_line",
    "session_sdg",
    "session_tag",
    "person",
    "session_role",
    "invitation",
    "registration",
}


def _schema_diff(database: Database) -> list:
    with database.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)


def _check_migrations(database: Database) -> None:
    migrate.upgrade(database.engine)
    assert migrate.current_revision(database.engine) is not None
    assert TABLES <= set(inspect(database.engine).get_table_names())
    assert _schema_diff(database) == [], "the models and the migrations disagree"
    migrate.downgrade(database.engine, "base")
    assert not TABLES & set(inspect(database.engine).get_table_names())
    migrate.upgrade(database.engine)
    assert _schema_diff(database) == []


def test_migrations_on_sqlite_match_the_models(tmp_path: Path) -> None:
    """Upgrading a fresh SQLite file gives exactly the models' schema; downgrade and upgrade again work."""
    database = Database(f"sqlite:///{tmp_path}/m.db")
    try:
        _check_migrations(database)
    finally:
        database.dispose()


@pytest.mark.postgres
def test_migrations_on_postgres_match_the_models(postgres_url: str) -> None:
    """The same migrations on a real PostgreSQL server."""
    database = Database(postgres_url)
    try:
        assert database.engine.dialect.name == "postgresql"
        _check_migrations(database)
    finally:
        database.dispose()


def _forum_and_session(db, starts_at: datetime) -> Session:  # noqa: ANN001
    forum = Forum(slug="f", name="F", start_date=date(2026, 3, 1), end_date=date(2026, 3, 2))
    db.add(forum)
    db.flush()
    session = Session(
        forum_id=forum.id,
        code="A",
        title="T",
        type="talkx",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
    )
    db.add(session)
    db.flush()
    return session


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    url = f"sqlite:///{tmp_path}/t.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    db = Database(url)
    migrate.upgrade(db.engine)
    yield db
    db.dispose()


def test_times_come_back_aware_and_equal(database: Database) -> None:
    """A time stored with any offset comes back as the same instant, in UTC, on both databases."""
    geneva = timezone(timedelta(hours=1))
    created = database.run_write(_forum_and_session, datetime(2026, 3, 1, 10, 30, tzinfo=geneva))
    loaded = database.run_read(lambda db: db.get(Session, created.id))
    assert loaded.starts_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert loaded.starts_at.tzinfo is not None and loaded.starts_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(database: Database) -> None:
    """Storing a naive datetime fails instead of guessing a zone."""
    with pytest.raises(StatementError, match="naive datetime"):
        database.run_write(_forum_and_session, datetime(2026, 3, 1, 10, 30))


def test_one_registration_per_person_and_session_is_a_database_constraint(database: Database) -> None:
    """The unique constraint holds even when the application check is bypassed; nothing half-written."""
    session = database.run_write(_forum_and_session, datetime(2026, 3, 1, 9, tzinfo=UTC))

    def person(db):  # noqa: ANN001, ANN202
        p = Person(email="a@b.org", password_hash="x", name="A")
        db.add(p)
        db.flush()
        db.add(Registration(person_id=p.id, session_id=session.id))
        return p

    someone = database.run_write(person)

    def twice(db):  # noqa: ANN001, ANN202
        db.add(Registration(person_id=someone.id, session_id=session.id))
        db.flush()

    with pytest.raises(IntegrityError):
        database.run_write(twice)
    count = database.run_read(lambda db: len(db.exec(select(Registration)).all()))
    assert count == 1


def test_deleting_a_forum_cascades_to_its_sessions(database: Database) -> None:
    """Foreign keys are enforced (SQLite needs the pragma): sessions go with their forum."""
    session = database.run_write(_forum_and_session, datetime(2026, 3, 1, 9, tzinfo=UTC))
    database.run_write(lambda db: db.delete(db.get(Forum, session.forum_id)))
    assert database.run_read(lambda db: db.get(Session, session.id)) is None


def test_bus_outbox_rows_on_both_databases(database: Database) -> None:
    """The shared rooms' database outbox (migration 0010): a row is committed with a room's events, ids grow, a process
    taking the room over reads the rows of the others in id order (not its own), and rows are deleted by id; the
    payload's bytes come back unchanged."""
    import time

    from realtime.log import Event
    from server.rooms import cluster, outbox, store

    def write(db):  # noqa: ANN001, ANN202
        session = _forum_and_session(db, datetime(2026, 3, 1, 9, tzinfo=UTC))
        person = Person(email="z@b.org", password_hash="x", name="Zoë")
        db.add(person)
        db.flush()
        room = store.claim_room(db, session.id)
        written = []
        for text in ("héllo ✓", "two"):
            event = Event("chat.posted", {"person_id": person.id, "name": "Zoë", "text": text, "at": time.time()})
            written.append(outbox.commit(db, room, [event], time.time(), "node-a"))
            room.apply([event])
        return session.id, written

    session_id, written = database.run_write(write)
    assert written[0][0] < written[1][0]
    batch = cluster.parse(cluster.FromOwner, written[0][1])
    assert (batch.node, batch.events[0].seq, batch.events[0].data["text"]) == ("node-a", 1, "héllo ✓")
    assert database.run_write(outbox.claim_room, session_id, "node-a")[1] == []  # its own: its bus has them
    assert database.run_write(outbox.claim_room, session_id, "node-b")[1] == written
    assert database.run_read(outbox.count) == 2
    assert database.run_write(outbox.delete, [written[0][0], 12345]) == 1
    assert database.run_write(outbox.claim_room, session_id, "node-c")[1] == written[1:]
