"""The key figures of a forum, computed in the database (definitions in docs/reports.md).

They read the attendance aggregates kept as visits happen (``server/attendance.py``: one row per
attendee of a session with their channels and time in the slot, and each session's peak), never the
visits themselves, so a report over a million visits reads a few hundred thousand small rows and
Python receives one row per session and one per demographic combination.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.sql import Select
from sqlmodel import Session as DbSession

from server.attendance import CHANNEL_BITS, TIMED, epoch_seconds
from server.errors import NotFound
from server.storage.models import (
    ExternalViews,
    Forum,
    Person,
    SessionActionLine,
    SessionAttendee,
    SessionSdg,
    SessionStats,
    SessionTag,
)
from server.storage.models import Session as SessionRow

NOT_DISCLOSED = "not_disclosed"
TIMED_BITS = sum(CHANNEL_BITS[c] for c in TIMED)
# A visitor "stayed" when they attended at least this share of the session's slot.
STAYED_SHARE = 0.8
CHANNELS = ("live", "lite", "recording", "transcript")


@dataclass(frozen=True)
class Scope:
    """What a report covers: a forum, optionally a date range (in the forum's time zone), a special
    track and a session type."""

    forum_id: int
    date_from: date | None = None
    date_to: date | None = None
    track: str | None = None
    session_type: str | None = None


@dataclass
class SessionFigures:
    id: int
    code: str
    title: str
    type: str
    track: str | None
    starts_at: str
    attendees: int = 0  # distinct people with an account plus distinct anonymous viewers, any channel
    anonymous: int = 0
    external_views: int = 0
    average_minutes: float = 0.0
    stayed_share: float = 0.0  # of attendees with an account and a live visit, who stayed ≥ 80%
    peak_concurrent: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass
class KeyFigures:
    scope: dict[str, Any]
    forum: str
    generated_at: str
    sessions: int
    sessions_held: int
    cumulative_attendance: int  # Σ sessions (attendees + external views)
    live_attendance: int  # Σ sessions attendees on forumlive
    external_views: int
    unique_participants: int
    anonymous_viewers: int  # Σ sessions distinct anonymous viewers
    countries_engaged: int
    high_level: int
    by_region: dict[str, int]
    by_gender: dict[str, int]
    by_stakeholder: dict[str, int]
    by_country: dict[str, int]
    by_channel: dict[str, int]
    sessions_by_type: dict[str, int]
    sessions_by_track: dict[str, int]
    sessions_by_action_line: dict[str, int]
    sessions_by_sdg: dict[str, int]
    sessions_by_tag: dict[str, int]
    per_session: list[SessionFigures]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sessions_in_scope(db: DbSession, scope: Scope, forum: Forum) -> Select[Any]:
    statement = select(SessionRow.id).where(SessionRow.forum_id == scope.forum_id)
    zone = ZoneInfo(forum.timezone)
    if scope.date_from is not None:
        start = datetime.combine(scope.date_from, time.min, zone).astimezone(UTC)
        statement = statement.where(SessionRow.starts_at >= start)
    if scope.date_to is not None:
        end = datetime.combine(scope.date_to + timedelta(days=1), time.min, zone).astimezone(UTC)
        statement = statement.where(SessionRow.starts_at < end)
    if scope.track is not None:
        statement = statement.where(SessionRow.track == scope.track)
    if scope.session_type is not None:
        statement = statement.where(SessionRow.type == scope.session_type)
    return statement


def compute(db: DbSession, scope: Scope, now: datetime | None = None) -> KeyFigures:
    """The raw key figures (not suppressed: for organizers; ``privacy.publish`` makes them public).

    Raises:
        NotFound: no such forum.
    """
    forum = db.get(Forum, scope.forum_id)
    if forum is None:
        raise NotFound(f"no forum {scope.forum_id}")
    in_scope = _sessions_in_scope(db, scope, forum).subquery()
    rows = db.scalars(
        select(SessionRow).where(SessionRow.id.in_(select(in_scope.c.id))).order_by(SessionRow.starts_at)  # type: ignore[union-attr]
    ).all()
    sessions = {row.id: row for row in rows}
    per_session = {
        s.id: SessionFigures(s.id or 0, s.code, s.title, s.type, s.track, s.starts_at.isoformat()) for s in rows
    }
    ids = select(in_scope.c.id)
    _attendance(db, ids, per_session)
    for session_id, views in db.exec(  # type: ignore[call-overload]
        select(ExternalViews.session_id, func.sum(ExternalViews.views))
        .where(ExternalViews.session_id.in_(ids))  # type: ignore[attr-defined]
        .group_by(ExternalViews.session_id)
    ).all():
        per_session[session_id].external_views = int(views)
    people = _people(db, ids)
    live = sum(s.attendees for s in per_session.values())
    external = sum(s.external_views for s in per_session.values())
    channels: Counter[str] = Counter()
    for s in per_session.values():
        channels.update(s.by_channel)
    return KeyFigures(
        scope={k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(scope).items()},
        forum=forum.name,
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        sessions=len(rows),
        sessions_held=sum(1 for s in rows if s.status in {"live", "ended"}),
        cumulative_attendance=live + external,
        live_attendance=live,
        external_views=external,
        unique_participants=people["unique"],
        anonymous_viewers=sum(s.anonymous for s in per_session.values()),
        countries_engaged=len([c for c in people["country"] if c != NOT_DISCLOSED]),
        high_level=people["high_level"],
        by_region=people["region"],
        by_gender=people["gender"],
        by_stakeholder=people["stakeholder"],
        by_country=people["country"],
        by_channel={c: channels.get(c, 0) for c in CHANNELS},
        sessions_by_type=dict(Counter(s.type for s in rows).most_common()),
        sessions_by_track=dict(Counter(s.track for s in rows if s.track).most_common()),
        sessions_by_action_line=_linked(db, SessionActionLine.action_line, SessionActionLine.session_id, ids),
        sessions_by_sdg=_linked(db, SessionSdg.sdg, SessionSdg.session_id, ids),
        sessions_by_tag=_linked(db, SessionTag.tag, SessionTag.session_id, ids),
        per_session=[per_session[sid] for sid in sessions],
    )


def _linked(db: DbSession, value: Any, session_id: Any, ids: Select[Any]) -> dict[str, int]:  # noqa: ANN401
    counts = db.exec(  # type: ignore[call-overload]
        select(value, func.count()).where(session_id.in_(ids)).group_by(value).order_by(func.count().desc(), value)
    ).all()
    return {str(v): int(n) for v, n in counts}


def _attendance(db: DbSession, ids: Select[Any], per_session: dict[int, SessionFigures]) -> None:
    """Per session, from the attendee rows kept as visits happen (server/attendance.py): attendees (any
    channel), anonymous viewers, attendees per channel, average minutes and the share who stayed ≥ 80%
    (over people with an account on the live and lite channels), and the peak."""
    a, s = SessionAttendee, SessionRow
    length = epoch_seconds(db, s.ends_at) - epoch_seconds(db, s.starts_at)
    timed = and_(a.person_id.is_not(None), a.channels.op("&")(TIMED_BITS) != 0)  # type: ignore[union-attr]
    columns = [
        a.session_id,
        func.count(),
        func.sum(case((a.person_id.is_(None), 1), else_=0)),  # type: ignore[union-attr]
        func.avg(case((timed, a.attended_s), else_=None)),
        func.avg(case((timed, case((a.attended_s >= STAYED_SHARE * length, 1.0), else_=0.0)), else_=None)),
        *(func.sum(case((a.channels.op("&")(bit) != 0, 1), else_=0)) for bit in CHANNEL_BITS.values()),
    ]
    statement = (
        select(*columns).join(s, s.id == a.session_id).where(a.session_id.in_(ids)).group_by(a.session_id)  # type: ignore[attr-defined]
    )
    for session_id, count, anonymous, attended, stayed, *channels in db.exec(statement).all():  # type: ignore[call-overload]
        row = per_session[session_id]
        row.attendees, row.anonymous = int(count), int(anonymous or 0)
        row.average_minutes = round(float(attended or 0) / 60, 1)
        row.stayed_share = round(float(stayed or 0), 3)
        row.by_channel = {name: int(n) for name, n in zip(CHANNEL_BITS, channels, strict=True) if n}
    peaks = select(SessionStats.session_id, SessionStats.peak_concurrent).where(SessionStats.session_id.in_(ids))  # type: ignore[attr-defined]
    for session_id, peak in db.exec(peaks).all():  # type: ignore[call-overload]
        per_session[session_id].peak_concurrent = int(peak)


def _people(db: DbSession, ids: Select[Any]) -> dict[str, Any]:
    """Unique participants (with an account) and their distributions; only consented values count."""
    a, p = SessionAttendee, Person
    attendees = select(a.person_id).where(a.session_id.in_(ids), a.person_id.is_not(None)).distinct().subquery()  # type: ignore[attr-defined,union-attr]
    country = case((p.country_consent_at.is_not(None), p.country), else_=None)  # type: ignore[union-attr]
    region = case((p.country_consent_at.is_not(None), p.region), else_=None)  # type: ignore[union-attr]
    gender = case((p.gender_consent_at.is_not(None), p.gender), else_=None)  # type: ignore[union-attr]
    stakeholder = case((p.stakeholder_consent_at.is_not(None), p.stakeholder_type), else_=None)  # type: ignore[union-attr]
    cube = db.exec(  # type: ignore[call-overload]
        select(country, region, gender, stakeholder, p.high_level, func.count())
        .where(p.id.in_(select(attendees.c.person_id)))  # type: ignore[union-attr]
        .group_by(country, region, gender, stakeholder, p.high_level)
    ).all()
    result: dict[str, Any] = {
        "unique": 0,
        "high_level": 0,
        "country": Counter(),
        "region": Counter(),
        "gender": Counter(),
        "stakeholder": Counter(),
    }
    for c, r, g, st, high, n in cube:
        result["unique"] += n
        result["high_level"] += n if high else 0
        result["country"][c or NOT_DISCLOSED] += n
        result["region"][r or NOT_DISCLOSED] += n
        result["gender"][g or NOT_DISCLOSED] += n
        result["stakeholder"][st or NOT_DISCLOSED] += n
    for key in ("country", "region", "gender", "stakeholder"):
        result[key] = dict(sorted(result[key].items(), key=lambda kv: (-kv[1], kv[0])))
    return result
