"""Attendance visits of room connections, written many per transaction while people arrive.

Every connection opens a visit and its last one closes it. Written one by one, an audience of
thousands arriving together queues thousands of transactions behind the database's single writer
(SQLite) and counts the session's open visits once for each. ``VisitBook`` groups them
(``server/storage/grouped.py``): changes that arrive while a write runs go together, in arrival order,
in the next transaction (``attendance.apply_visits``: a few statements for a whole run of arrivals).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server import attendance
from server.storage.db import Database
from server.storage.grouped import Grouped

# Changes per transaction at most.
BATCH = 500


class VisitBook:
    def __init__(self, database: Database) -> None:
        async def write(changes: list[tuple[str, tuple[Any, ...]]]) -> list[int | None]:
            return await database.write(attendance.apply_visits, changes)

        self._changes: Grouped[tuple[str, tuple[Any, ...]], int | None] = Grouped(write, BATCH, "attendance visits")

    @property
    def batches(self) -> int:
        """Transactions written so far."""
        return self._changes.groups

    async def open(self, session_id: int, person_id: int, channel: str, now: datetime) -> int:
        """Open (or continue) the person's visit; returns its id."""
        visit_id = await self._changes(("open", (session_id, person_id, channel, now)))
        assert visit_id is not None
        return visit_id

    async def close(self, visit_id: int, now: datetime) -> None:
        await self._changes(("close", (visit_id, now)))
