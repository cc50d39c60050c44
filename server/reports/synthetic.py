"""A synthetic forum with attendance, for tests, benchmarks and demos of the key figures.

``generate`` writes a forum, its sessions (types, tracks, Action Lines, SDGs, tags), people (each
demographic value present only with its consent), visits (several per person and session: people
reconnect and move between channels; some anonymous lite viewers) and external view counts, with bulk
inserts. It returns the same data as plain Python records, so that a test can work out the expected
figures on its own (``expected``), without SQL.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session as DbSession

from server import attendance, geo
from server.reports.figures import NOT_DISCLOSED, STAYED_SHARE
from server.storage.models import (
    AttendanceVisit,
    ExternalViews,
    Forum,
    Person,
    SessionActionLine,
    SessionSdg,
    SessionTag,
)
from server.storage.models import Session as SessionRow
from server.vocab import Gender, SessionType, StakeholderType, Track

TAGS = ("covid-19", "connectivity", "ai", "cybersecurity", "e-health", "e-learning", "climate")


@dataclass
class Generated:
    forum_id: int
    sessions: list[dict[str, Any]] = field(default_factory=list)
    people: dict[int, dict[str, Any]] = field(default_factory=dict)
    visits: list[dict[str, Any]] = field(default_factory=list)
    external: list[dict[str, Any]] = field(default_factory=list)


def generate(
    db: DbSession,
    sessions: int = 250,
    visits: int = 50_000,
    countries: int = 185,
    seed: int = 2020,
    start: date = date(2020, 6, 22),
    progress: Callable[[int, int], None] | None = None,
) -> Generated:
    """Write a synthetic forum and return what was written."""
    rng = random.Random(seed)
    forum = Forum(
        slug=f"synthetic-{seed}-{rng.randrange(10**9)}",
        name="WSIS Forum (synthetic)",
        start_date=start,
        end_date=start + timedelta(days=70),
        timezone="Europe/Zurich",
    )
    db.add(forum)
    db.flush()
    out = Generated(forum.id or 0)
    codes = [code for code, _ in geo.country_choices()][:countries]

    rows = []
    for i in range(sessions):
        begins = datetime.combine(start, datetime.min.time(), UTC) + timedelta(days=i % 70, hours=8 + (i * 7) % 9)
        rows.append(
            {
                "forum_id": out.forum_id,
                "code": f"S{i:04d}",
                "title": f"Session {i}",
                "type": rng.choice(list(SessionType)).value,
                "track": rng.choice([None, None, *[t.value for t in Track]]),
                "starts_at": begins,
                "ends_at": begins + timedelta(minutes=rng.choice([45, 60, 90])),
                "status": "ended",
                "language": "en",
                "description": "",
                "capacity": None,
                "created_at": begins,
                "updated_at": begins,
            }
        )
    ids = _insert_returning_ids(db, SessionRow, rows)
    links: dict[str, list[dict[str, Any]]] = {"al": [], "sdg": [], "tag": []}
    for session_id, row in zip(ids, rows, strict=True):
        record = {
            "id": session_id,
            **row,
            "action_lines": sorted(rng.sample([f"C{n}" for n in range(1, 12)], rng.randint(0, 3))),
            "sdgs": sorted(rng.sample(range(1, 18), rng.randint(0, 3))),
            "tags": sorted(rng.sample(TAGS, rng.randint(0, 2))),
        }
        out.sessions.append(record)
        links["al"] += [{"session_id": session_id, "action_line": a} for a in record["action_lines"]]
        links["sdg"] += [{"session_id": session_id, "sdg": n} for n in record["sdgs"]]
        links["tag"] += [{"session_id": session_id, "tag": t} for t in record["tags"]]
    for model, key in ((SessionActionLine, "al"), (SessionSdg, "sdg"), (SessionTag, "tag")):
        if links[key]:
            db.execute(insert(model), links[key])

    n_people = max(10, visits // 4)
    people_rows = []
    for i in range(n_people):
        country = rng.choice(codes) if rng.random() < 0.85 else None
        gender = rng.choice(list(Gender)).value if rng.random() < 0.7 else None
        stakeholder = rng.choice(list(StakeholderType)).value if rng.random() < 0.8 else None
        region = geo.region_for(country)
        consent = datetime(2020, 6, 1, tzinfo=UTC)
        people_rows.append(
            {
                "email": f"p{i}-{seed}-{out.forum_id}@synthetic.example",
                "password_hash": "!",
                "name": f"Person {i}",
                "organisation": "",
                "country": country,
                "region": region.value if region else None,
                "country_consent_at": consent if country else None,
                "gender": gender,
                "gender_consent_at": consent if gender else None,
                "stakeholder_type": stakeholder,
                "stakeholder_consent_at": consent if stakeholder else None,
                "high_level": rng.random() < 0.03,
                "title": "",
                "is_organizer": False,
                "created_at": consent,
            }
        )
    person_ids = _insert_returning_ids(db, Person, people_rows)
    out.people = {pid: row for pid, row in zip(person_ids, people_rows, strict=True)}

    visit_rows = []
    popular = [rng.paretovariate(1.2) for _ in out.sessions]
    while len(visit_rows) < visits:
        session = rng.choices(out.sessions, weights=popular)[0]
        length = (session["ends_at"] - session["starts_at"]).total_seconds()
        anonymous = rng.random() < 0.05
        person = None if anonymous else rng.choice(person_ids)
        key = f"anon-{rng.randrange(visits)}" if anonymous else None
        channel = "lite" if anonymous else rng.choices(["live", "lite", "recording", "transcript"], [80, 10, 6, 4])[0]
        # A person comes a little early or late, stays a while, and may reconnect (a second visit).
        joined = session["starts_at"] + timedelta(seconds=rng.uniform(-300, length * 0.5))
        for _ in range(1 if rng.random() < 0.8 else 2):
            left = joined + timedelta(seconds=rng.uniform(60, length))
            visit_rows.append(
                {
                    "session_id": session["id"],
                    "person_id": person,
                    "anonymous_key": key,
                    "channel": channel,
                    "joined_at": joined,
                    "last_seen_at": left,
                    "left_at": left,
                }
            )
            joined = left + timedelta(seconds=rng.uniform(61, 600))
        if progress is not None and len(visit_rows) % 50_000 < 2:
            progress(len(visit_rows), visits)
    visit_rows = visit_rows[:visits]
    for offset in range(0, len(visit_rows), 20_000):
        db.execute(insert(AttendanceVisit), visit_rows[offset : offset + 20_000])
        if progress is not None:
            progress(min(offset + 20_000, len(visit_rows)), len(visit_rows))
    out.visits = visit_rows
    attendance.rebuild(db, [s["id"] for s in out.sessions])  # the aggregates the figures read

    external_rows = [
        {"session_id": s["id"], "platform": platform, "views": rng.randint(0, 800), "imported_at": s["ends_at"]}
        for s in out.sessions
        for platform in ("video-site", "social-stream")
        if rng.random() < 0.3
    ]
    if external_rows:
        db.execute(insert(ExternalViews), external_rows)
    out.external = external_rows
    db.flush()
    return out


def _insert_returning_ids(db: DbSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:  # noqa: ANN401
    """Bulk insert, then read the ids back in insertion order (portable across SQLite and PostgreSQL)."""
    table = model.__table__
    ids: list[int] = []
    for offset in range(0, len(rows), 5000):
        chunk = rows[offset : offset + 5000]
        result = db.execute(insert(table).returning(table.c.id), chunk)
        ids += [row[0] for row in result.all()]
    return ids


def expected(data: Generated) -> dict[str, Any]:
    """The key figures of the whole synthetic forum, worked out in plain Python from the records."""
    sessions = {s["id"]: s for s in data.sessions}
    attendees: dict[int, set[Any]] = defaultdict(set)
    anonymous: dict[int, set[str]] = defaultdict(set)
    channel_people: dict[tuple[int, str], set[Any]] = defaultdict(set)
    attended: dict[tuple[int, int], float] = defaultdict(float)
    for v in data.visits:
        who = v["person_id"] if v["person_id"] is not None else "a:" + v["anonymous_key"]
        attendees[v["session_id"]].add(who)
        channel_people[(v["session_id"], v["channel"])].add(who)
        if v["person_id"] is None:
            anonymous[v["session_id"]].add(v["anonymous_key"])
        elif v["channel"] in {"live", "lite"}:
            s = sessions[v["session_id"]]
            overlap = (min(v["left_at"], s["ends_at"]) - max(v["joined_at"], s["starts_at"])).total_seconds()
            attended[(v["session_id"], v["person_id"])] += max(0.0, overlap)
    external: Counter[int] = Counter()
    for e in data.external:
        external[e["session_id"]] += e["views"]
    unique = {v["person_id"] for v in data.visits if v["person_id"] is not None}
    people = [data.people[pid] for pid in unique]

    def distribution(key: str, consent: str) -> dict[str, int]:
        return dict(Counter((p[key] if p[consent] else None) or NOT_DISCLOSED for p in people))

    times_of: dict[int, list[float]] = defaultdict(list)
    for (session_id, _), t in attended.items():
        times_of[session_id].append(t)
    visits_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for v in data.visits:
        visits_of[v["session_id"]].append(v)
    per_session = {}
    for sid, s in sessions.items():
        length = (s["ends_at"] - s["starts_at"]).total_seconds()
        times = times_of[sid]
        per_session[sid] = {
            "attendees": len(attendees[sid]),
            "anonymous": len(anonymous[sid]),
            "external_views": external[sid],
            "average_minutes": round(sum(times) / len(times) / 60, 1) if times else 0.0,
            "stayed_share": round(sum(t >= STAYED_SHARE * length for t in times) / len(times), 3) if times else 0.0,
            "peak_concurrent": _peak(visits_of[sid]),
        }
    live = sum(len(a) for a in attendees.values())
    return {
        "sessions": len(sessions),
        "cumulative_attendance": live + sum(external.values()),
        "live_attendance": live,
        "external_views": sum(external.values()),
        "unique_participants": len(unique),
        "anonymous_viewers": sum(len(a) for a in anonymous.values()),
        "high_level": sum(1 for p in people if p["high_level"]),
        "countries_engaged": len({p["country"] for p in people if p["country"] and p["country_consent_at"]}),
        "by_country": distribution("country", "country_consent_at"),
        "by_region": distribution("region", "country_consent_at"),
        "by_gender": distribution("gender", "gender_consent_at"),
        "by_stakeholder": distribution("stakeholder_type", "stakeholder_consent_at"),
        "by_channel": {
            c: sum(len(people) for (_, ch), people in channel_people.items() if ch == c)
            for c in ("live", "lite", "recording", "transcript")
        },
        "sessions_by_type": dict(Counter(s["type"] for s in sessions.values())),
        "sessions_by_track": dict(Counter(s["track"] for s in sessions.values() if s["track"])),
        "sessions_by_action_line": dict(Counter(a for s in sessions.values() for a in s["action_lines"])),
        "sessions_by_sdg": dict(Counter(str(n) for s in sessions.values() for n in s["sdgs"])),
        "sessions_by_tag": dict(Counter(t for s in sessions.values() for t in s["tags"])),
        "per_session": per_session,
    }


def _peak(visits: list[dict[str, Any]]) -> int:
    events = []
    for v in visits:
        if v["channel"] in {"live", "lite"}:
            events += [(v["joined_at"], 1), (v["left_at"], -1)]
    current = peak = 0
    for _, step in sorted(events):
        current += step
        peak = max(peak, current)
    return peak
