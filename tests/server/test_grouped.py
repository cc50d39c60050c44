"""Grouped database calls: many arrivals in one round, each with its own answer, failures kept apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from realtime.room import Role
from server.rooms import store
from server.storage import migrate
from server.storage.db import Database
from server.storage.grouped import Grouped
from server.storage.models import Forum, Person, Session, SessionRole


def test_calls_made_during_a_round_go_together_in_order() -> None:
    rounds: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        rounds.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    async def main() -> list[int]:
        grouped = Grouped(run, max_group=4)
        first = asyncio.create_task(grouped(0))
        await asyncio.sleep(0)  # the first round starts alone
        rest = [asyncio.create_task(grouped(i)) for i in range(1, 10)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert rounds == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_a_failing_call_fails_alone() -> None:
    async def run(items: list[int]) -> list[int]:
        if 3 in items:
            raise ValueError("three")
        return items

    async def main() -> list[object]:
        grouped = Grouped(run)
        return await asyncio.gather(*(grouped(i) for i in range(8)), return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5, 6, 7]


def test_a_cancelled_caller_still_waits_for_its_call() -> None:
    """As with a write in a worker thread: the caller's task ends only after its call is done."""
    done: list[int] = []

    async def run(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        done.extend(items)
        return items

    async def main() -> None:
        grouped = Grouped(run)
        task = asyncio.create_task(grouped(1))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == [1]

    asyncio.run(main())


def test_actors_of_reads_people_and_roles_for_many(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/a.db")
    migrate.upgrade(database.engine)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def seed(db):  # noqa: ANN001, ANN202
        forum = Forum(slug="f", name="F", start_date=date(2026, 3, 1), end_date=date(2026, 3, 5))
        db.add(forum)
        db.flush()
        sessions = [
            Session(forum_id=forum.id, code=c, title=c, type="talkx", starts_at=t0, ends_at=t0 + timedelta(hours=1))
            for c in ("A", "B")
        ]
        people = [Person(email=f"{n}@example.org", password_hash="x", name=n) for n in ("mod", "pat", "org")]
        people[2].is_organizer = True
        db.add_all([*sessions, *people])
        db.flush()
        db.add(SessionRole(session_id=sessions[0].id, person_id=people[0].id, role="moderator"))
        return [s.id for s in sessions], [p.id for p in people]

    (a, b), (mod, pat, org) = database.run_write(seed)
    wanted = [(mod, a), (mod, b), (pat, a), (org, b), (9999, a)]
    found = database.run_read(store.actors_of, wanted)
    assert [(f[0].id, f[1]) if f else None for f in found] == [
        (mod, Role.MODERATOR),
        (mod, Role.PARTICIPANT),
        (pat, Role.PARTICIPANT),
        (org, Role.ORGANIZER),
        None,
    ]
    # The same answers as one at a time.
    for (person_id, session_id), one in zip(wanted[:4], found[:4], strict=True):
        person = database.run_read(lambda db, pid=person_id: db.get(Person, pid))
        assert database.run_read(store.role_of, person, session_id) == one[1]
    database.dispose()
