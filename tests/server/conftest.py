"""Fixtures of the server tests that several modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.storage import migrate
from server.storage.db import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database of the test's own (test_storage.py has its own, on both databases)."""
    db = Database(f"sqlite:///{tmp_path}/rooms.db")
    migrate.upgrade(db.engine)
    yield db
    db.dispose()
