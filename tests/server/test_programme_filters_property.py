"""Property test: the SQL programme filters select exactly what a plain Python filter selects."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server import programme
from server.schemas import ProgrammeQuery, SessionFields
from server.storage import migrate
from server.storage.db import Database
from server.storage.models import Forum
from server.vocab import SessionType, Track

BASE = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
ZONES = ["Europe/Zurich", "America/New_York", "Asia/Tokyo", "UTC"]

session_strategy = st.fixed_dictionaries(
    {
        "title": st.sampled_from(["E-health", "Youth café", "Cyber trust", "Open data", "Prize"]),
        "type": st.sampled_from(list(SessionType)),
        "track": st.none() | st.sampled_from(list(Track)),
        "language": st.sampled_from(["en", "fr", "ar"]),
        "action_lines": st.lists(st.sampled_from(["C1", "C4", "C7", "C11"]), max_size=3),
        "sdgs": st.lists(st.integers(1, 17), max_size=3),
        "tags": st.lists(st.sampled_from(["covid-19", "ai", "youth"]), max_size=2),
        "start_h": st.integers(0, 4 * 24 - 1),
        "length_h": st.integers(1, 30),
    }
)

query_strategy = st.fixed_dictionaries(
    {},
    optional={
        "day": st.dates(date(2026, 2, 28), date(2026, 3, 6)),
        "tz": st.sampled_from(ZONES),
        "type": st.sampled_from(list(SessionType)),
        "track": st.sampled_from(list(Track)),
        "language": st.sampled_from(["en", "fr", "ar"]),
        "action_line": st.sampled_from(["C1", "c4", "C7"]),
        "sdg": st.integers(1, 17),
        "tag": st.sampled_from(["covid-19", "ai"]),
        "q": st.sampled_from(["health", "CAFÉ", "trust", "youth", "%"]),
    },
)


def _expected(rows: list[dict], query: dict, forum_zone: str) -> set[str]:
    keep = set()
    for row in rows:
        start = BASE + timedelta(hours=row["start_h"])
        end = start + timedelta(hours=row["length_h"])
        if "day" in query:
            zone = ZoneInfo(query.get("tz", forum_zone))
            lo = datetime.combine(query["day"], time(0), tzinfo=zone)
            hi = datetime.combine(query["day"] + timedelta(days=1), time(0), tzinfo=zone)
            if not (start < hi and end > lo):
                continue
        if "type" in query and row["type"] != query["type"]:
            continue
        if "track" in query and row["track"] != query["track"]:
            continue
        if "language" in query and row["language"] != query["language"]:
            continue
        if "action_line" in query and query["action_line"].upper() not in row["action_lines"]:
            continue
        if "sdg" in query and query["sdg"] not in row["sdgs"]:
            continue
        if "tag" in query and query["tag"] not in row["tags"]:
            continue
        if "q" in query:
            needle = query["q"].lower()
            haystacks = [row["title"].lower(), row["code"].lower(), *row["tags"]]
            if not any(needle in h for h in haystacks):
                continue
        keep.add(row["code"])
    return keep


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(
    rows=[
        {
            "title": "Youth café",
            "type": SessionType.TALKX,
            "track": None,
            "language": "fr",
            "action_lines": [],
            "sdgs": [],
            "tags": [],
            "start_h": 1,
            "length_h": 1,
        }
    ],
    query={"q": "CAFÉ"},
    zone="UTC",
)
@given(rows=st.lists(session_strategy, min_size=0, max_size=8), query=query_strategy, zone=st.sampled_from(ZONES))
def test_sql_filters_match_python_filters(rows: list[dict], query: dict, zone: str) -> None:
    """For any programme and any combination of filters, the SQL result equals the reference filter."""
    database = Database("sqlite://")
    migrate.upgrade(database.engine)
    try:

        def seed(db):  # noqa: ANN001, ANN202
            forum = Forum(slug="f", name="F", start_date=date(2026, 3, 1), end_date=date(2026, 3, 5), timezone=zone)
            db.add(forum)
            db.flush()
            for index, row in enumerate(rows):
                row["code"] = f"X{index}"
                start = BASE + timedelta(hours=row["start_h"])
                fields = SessionFields(
                    title=row["title"],
                    type=row["type"],
                    track=row["track"],
                    language=row["language"],
                    action_lines=row["action_lines"],
                    sdgs=row["sdgs"],
                    tags=row["tags"],
                    starts_at=start,
                    ends_at=start + timedelta(hours=row["length_h"]),
                )
                programme.write_session(db, forum.id, row["code"], fields)

        database.run_write(seed)
        result = database.run_read(programme.programme, ProgrammeQuery(**query))
        got = {s.code for s in result.sessions}
        assert got == _expected(rows, query, zone)
        assert result.total == len(got)
        starts = [s.starts_at for s in result.sessions]
        assert starts == sorted(starts)
    finally:
        database.dispose()
