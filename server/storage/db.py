"""The database handle: engine, sessions, and running blocking work off the event loop.

SQLite is the embedded default; PostgreSQL (``postgresql+psycopg://``) in production. Blocking
database work runs in worker threads; on SQLite, writes go through one lock (one writer), as
SQLite allows a single writer at a time and would otherwise answer "database is locked".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session as DbSession
from sqlmodel import create_engine

T = TypeVar("T")
P = ParamSpec("P")

# How long SQLite waits for another writer's lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in {"", ":memory:"}
        if not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # SQLite's own lower() folds ASCII only; programme search must match "CAFÉ" to "café".
            dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.drivername in {"postgresql", "postgres"}:
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One engine and the ways to use it: ``session()`` in a thread, ``read``/``write`` from async code."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[DbSession]:
        """A session that commits on success and rolls back on any error (nothing half-written)."""
        with DbSession(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.session() as session:
            return fn(session, *args)

    def run_write(self, fn: Callable[..., T], *args: Any) -> T:
        if self.is_sqlite:
            with self._write_lock, self.session() as session:
                return fn(session, *args)
        with self.session() as session:
            return fn(session, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in a worker thread."""
        return await anyio.to_thread.run_sync(self.run_read, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in a worker thread as the single writer; commit on success."""
        return await anyio.to_thread.run_sync(self.run_write, fn, *args)

    def dispose(self) -> None:
        self.engine.dispose()
