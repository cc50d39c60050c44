"""Key figures over a synthetic forum (250 sessions, 50,000 visits, 185 countries, reconnects, anonymous
viewers, external counts), checked against figures worked out in plain Python from the same records;
publication hides small cells so that they cannot be recomputed; only consented values count."""

from __future__ import annotations

import pytest

from server.reports import privacy
from server.reports.figures import KeyFigures, Scope, compute
from server.reports.synthetic import Generated, expected, generate
from server.storage.db import Database


@pytest.fixture(scope="module")
def forum(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Generated]:
    from server.storage import migrate

    database = Database(f"sqlite:///{tmp_path_factory.mktemp('reports') / 'forum.db'}")
    migrate.upgrade(database.engine)
    with database.session() as db:
        data = generate(db, sessions=250, visits=50_000, countries=185)
        db.commit()
    return database, data


def _figures(database: Database, scope: Scope) -> KeyFigures:
    with database.session() as db:
        return compute(db, scope)


def test_key_figures_match_an_independent_computation(forum: tuple[Database, Generated]) -> None:
    database, data = forum
    figures = _figures(database, Scope(data.forum_id))
    want = expected(data)
    for key in (
        "sessions",
        "cumulative_attendance",
        "live_attendance",
        "external_views",
        "unique_participants",
        "anonymous_viewers",
        "high_level",
        "countries_engaged",
        "by_country",
        "by_region",
        "by_gender",
        "by_stakeholder",
        "by_channel",
        "sessions_by_type",
        "sessions_by_track",
        "sessions_by_action_line",
        "sessions_by_sdg",
        "sessions_by_tag",
    ):
        assert getattr(figures, key) == want[key], key
    assert figures.countries_engaged > 150 and len(data.visits) == 50_000
    for row in figures.per_session:
        w = want["per_session"][row.id]
        assert (row.attendees, row.anonymous, row.external_views, row.peak_concurrent) == (
            w["attendees"],
            w["anonymous"],
            w["external_views"],
            w["peak_concurrent"],
        ), row.id
        assert row.average_minutes == pytest.approx(w["average_minutes"], abs=0.11)
        assert row.stayed_share == pytest.approx(w["stayed_share"], abs=0.002)


def test_scope_filters_by_track_type_and_dates(forum: tuple[Database, Generated]) -> None:
    database, data = forum
    youth = _figures(database, Scope(data.forum_id, track="youth"))
    assert youth.sessions == sum(1 for s in data.sessions if s["track"] == "youth")
    assert set(youth.sessions_by_track) == {"youth"}
    talks = _figures(database, Scope(data.forum_id, session_type="talkx"))
    assert {r.type for r in talks.per_session} == {"talkx"}
    first_week = _figures(database, Scope(data.forum_id, date_from=data.sessions[0]["starts_at"].date(), date_to=None))
    assert first_week.sessions == len(data.sessions)
    one_day = data.sessions[3]["starts_at"].date()
    day = _figures(database, Scope(data.forum_id, date_from=one_day, date_to=one_day))
    assert 0 < day.sessions < len(data.sessions)
    assert all(r.starts_at.startswith(one_day.isoformat()) for r in day.per_session)


def test_suppression_hides_small_cells_and_one_more() -> None:
    cells = {"woman": 40, "man": 38, "non_binary": 3, "another": 12, "not_disclosed": 9}
    published = privacy.suppress(cells)
    assert published["non_binary"] == "<5"
    # The total (102) is published: with only one hidden cell it could be recomputed, so the next
    # smallest is hidden too, and the two hidden cells can only be known together.
    assert published["not_disclosed"] == "<5"
    assert [published[k] for k in ("woman", "man", "another")] == [40, 38, 12]
    shown = sum(v for v in published.values() if isinstance(v, int))
    assert sum(cells.values()) - shown == 3 + 9
    assert privacy.suppress({"a": 2, "b": 1, "c": 0}) == {"a": "<5", "b": "<5", "c": 0}  # total < 5
    assert privacy.suppress({"a": 7, "b": 0}) == {"a": 7, "b": 0}  # a zero reveals no one


def test_published_figures_hide_small_sessions_and_their_details(forum: tuple[Database, Generated]) -> None:
    database, data = forum
    figures = _figures(database, Scope(data.forum_id))
    published = privacy.publish(figures)
    rows = published["per_session"]
    hidden = [r for r in rows if r["attendees"] == "<5"]
    small = [r for r in figures.per_session if 0 < r.attendees < 5]
    assert len(hidden) >= (max(2, len(small)) if small else 0)
    for r in hidden:
        assert r["average_minutes"] is None and r["peak_concurrent"] is None and r["stayed_share"] is None
    # No hidden session can be recomputed from the published total: the total less what is shown is the
    # sum of at least two hidden sessions.
    raw = {r.id: r.attendees for r in figures.per_session}
    shown = sum(r["attendees"] for r in rows if isinstance(r["attendees"], int))
    assert published["live_attendance"] - shown == sum(raw[h["id"]] for h in hidden)
    assert len(hidden) != 1
    for key in ("by_country", "by_region", "by_gender", "by_stakeholder"):
        values = published[key].values()
        assert sum(1 for v in values if v == "<5") != 1, key
        assert all(v == "<5" or v == 0 or v >= 5 for v in values), key


def test_only_consented_values_are_counted(tmp_path) -> None:  # noqa: ANN001
    from datetime import UTC, datetime

    from server import attendance
    from server.storage import migrate
    from server.storage.models import Forum, Person
    from server.storage.models import Session as SessionRow

    database = Database(f"sqlite:///{tmp_path / 'c.db'}")
    migrate.upgrade(database.engine)
    at = datetime(2026, 5, 4, 9, tzinfo=UTC)
    with database.session() as db:
        forum = Forum(slug="c", name="C", start_date=at.date(), end_date=at.date())
        db.add(forum)
        db.flush()
        session = SessionRow(forum_id=forum.id, code="A", title="A", type="talkx", starts_at=at, ends_at=at)
        db.add(session)
        # A value stored without its consent time (e.g. written by an old import) must not be counted.
        people = [
            Person(
                email="a@x.org",
                password_hash="!",
                name="A",
                country="BR",
                region="americas",
                country_consent_at=at,
                gender="woman",
                gender_consent_at=at,
            ),
            Person(email="b@x.org", password_hash="!", name="B", country="JP", region="asia_pacific", gender="man"),
        ]
        db.add_all(people)
        db.flush()
        for p in people:
            visit = attendance.open_visit(db, session.id, p.id, "live", at)
            attendance.close_visit(db, visit, at)
        db.commit()
        figures = compute(db, Scope(forum.id or 0))
    assert figures.by_country == {"BR": 1, "not_disclosed": 1}
    assert figures.by_gender == {"woman": 1, "not_disclosed": 1}
    assert figures.countries_engaged == 1 and figures.unique_participants == 2


def test_aggregates_kept_as_visits_happen_equal_a_rebuild_from_the_visits(tmp_path) -> None:  # noqa: ANN001
    """Opening, continuing and closing visits through server/attendance.py keeps the attendee rows and peaks
    that a rebuild from the raw visits gives; so the figures read the same either way."""
    import random
    from datetime import UTC, datetime, timedelta

    from server import attendance
    from server.storage import migrate
    from server.storage.models import Forum, Person
    from server.storage.models import Session as SessionRow

    database = Database(f"sqlite:///{tmp_path / 'live.db'}")
    migrate.upgrade(database.engine)
    rng = random.Random(5)
    t0 = datetime(2026, 5, 4, 9, tzinfo=UTC)
    with database.session() as db:
        forum = Forum(slug="l", name="L", start_date=t0.date(), end_date=t0.date())
        db.add(forum)
        db.flush()
        session = SessionRow(
            forum_id=forum.id, code="A", title="A", type="talkx", starts_at=t0, ends_at=t0 + timedelta(hours=1)
        )
        db.add(session)
        people = [Person(email=f"{i}@x.org", password_hash="!", name=str(i)) for i in range(12)]
        db.add_all(people)
        db.flush()
        now = t0 - timedelta(minutes=5)
        open_visits: dict[tuple[int | None, str | None, str], int] = {}
        for _ in range(300):  # people come, go, reconnect within the grace period or later, switch channels
            now += timedelta(seconds=rng.uniform(1, 40))
            person = rng.choice(people)
            anonymous = rng.random() < 0.1
            key = (
                (None, f"k{rng.randrange(3)}", "lite")
                if anonymous
                else (person.id, None, rng.choice(["live", "live", "lite", "transcript"]))
            )
            if key in open_visits:
                attendance.close_visit(db, open_visits.pop(key), now)
            else:
                open_visits[key] = attendance.open_visit(db, session.id, key[0], key[2], now, anonymous_key=key[1])
        for visit in open_visits.values():
            attendance.close_visit(db, visit, now + timedelta(seconds=5))
        db.commit()
        kept = compute(db, Scope(forum.id or 0)).per_session[0]
        attendance.rebuild(db, [session.id])
        db.commit()
        rebuilt = compute(db, Scope(forum.id or 0)).per_session[0]
    assert kept.attendees > 5
    assert (kept.attendees, kept.anonymous, kept.by_channel, kept.peak_concurrent) == (
        rebuilt.attendees,
        rebuilt.anonymous,
        rebuilt.by_channel,
        rebuilt.peak_concurrent,
    )
    assert kept.average_minutes == pytest.approx(rebuilt.average_minutes, abs=0.05)
    assert kept.stayed_share == pytest.approx(rebuilt.stayed_share, abs=1e-6)


def test_retention_deletes_old_visits_and_keeps_the_figures(tmp_path) -> None:  # noqa: ANN001
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from server import attendance
    from server.storage import migrate
    from server.storage.models import AttendanceVisit

    database = Database(f"sqlite:///{tmp_path / 'retention.db'}")
    migrate.upgrade(database.engine)
    with database.session() as db:
        data = generate(db, sessions=20, visits=2000, countries=30, seed=3)
        db.commit()
        before = compute(db, Scope(data.forum_id))
        # The synthetic sessions ended in 2020: a cut-off after them deletes every closed visit.
        deleted = attendance.purge_visits(db, datetime(2024, 1, 1, tzinfo=UTC))
        db.commit()
        assert deleted == 2000
        assert db.scalar(select(func.count()).select_from(AttendanceVisit)) == 0
        after = compute(db, Scope(data.forum_id))
    assert after.as_dict() | {"generated_at": ""} == before.as_dict() | {"generated_at": ""}
    with database.session() as db:
        assert attendance.purge_visits(db, datetime(2019, 1, 1, tzinfo=UTC)) == 0
