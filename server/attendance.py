"""Attendance capture: one visit per person per session per channel, written as people come and go,
and the per-session aggregates the key figures read, kept up to date at the same time.

A reconnect within the grace period continues the same visit (a flaky network is not two visits);
a heartbeat keeps ``last_seen_at`` current, so a visit left open by a crash is closed at its last
heartbeat when the server starts again. Each attendee of a session has one ``SessionAttendee`` row:
the channels they used and their time within the session's slot, added when a visit closes; each
session's ``SessionStats`` keeps the most visitors at once. ``rebuild`` recomputes both from the visits
(after an import, or for data written before they existed).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, delete, func, insert, literal, or_, union_all
from sqlalchemy import case as sql_case
from sqlalchemy import select as sa_select
from sqlmodel import Session as DbSession
from sqlmodel import col, select, update

from server.storage.models import AttendanceVisit, Person, SessionAttendee, SessionStats
from server.storage.models import Session as SessionRow

# A reconnect within this many seconds continues the visit.
GRACE_S = 60
# How often an open visit's last_seen_at is refreshed while connected.
HEARTBEAT_S = 30
CHANNEL_BITS = {"live": 1, "lite": 2, "recording": 4, "transcript": 8}
# Channels where joining and leaving are known, so that time attended and presence at once mean something.
TIMED = ("live", "lite")


def attendee_key(person_id: int | None, anonymous_key: str | None) -> str:
    return f"p:{person_id}" if person_id is not None else f"a:{anonymous_key}"


def open_visit(
    db: DbSession, session_id: int, person_id: int | None, channel: str, now: datetime, anonymous_key: str | None = None
) -> int:
    """Start a visit, or continue the latest one if it is open or closed less than ``GRACE_S`` ago."""
    (visit_id,) = apply_visits(db, [("open", (session_id, person_id, channel, now, anonymous_key))])
    assert visit_id is not None
    return visit_id


def apply_visits(db: DbSession, changes: list[tuple[str, tuple[Any, ...]]]) -> list[int | None]:
    """Open and close many visits in one transaction, in order (``("open", open_visit's arguments)`` or
    ``("close", (visit_id, now))``); returns each opened visit's id (``None`` for a close).

    Consecutive openings are read and written together (a few statements for the whole run rather than
    a few each). The open visits are counted for the peak once per session after a run of openings, and
    before a closing in that session, so the peak is what it would be with each change counting on its
    own: while an audience arrives, one count serves a whole batch of joins.
    """
    uncounted: set[int] = set()
    results: list[int | None] = []
    known = _prefetch_closings(db, [args[0] for kind, args in changes if kind == "close"])
    i = 0
    while i < len(changes):
        if changes[i][0] == "open":
            j = i
            while j < len(changes) and changes[j][0] == "open":
                j += 1
            run = [_opening(*args) for _, args in changes[i:j]]
            results.extend(_open_run(db, run))
            uncounted.update(opening[0] for opening in run if opening[2] in TIMED)
            i = j
            continue
        visit_id, now = changes[i][1]
        visit = db.get(AttendanceVisit, visit_id)
        if visit is not None and visit.session_id in uncounted:
            _raise_peak(db, visit.session_id)
            uncounted.discard(visit.session_id)
        if visit is not None and visit.left_at is None:
            _close(db, visit, now, known)
        results.append(None)
        i += 1
    for session_id in sorted(uncounted):
        _raise_peak(db, session_id)
    return results


def _prefetch_closings(db: DbSession, visit_ids: list[int]) -> dict[tuple[int, str], SessionAttendee]:
    """Read the visits about to close, their sessions and their attendees' rows in three statements (the
    session keeps the visits and sessions for ``db.get``); returns the attendees' rows by (session, attendee)."""
    if not visit_ids:
        return {}
    visits = db.exec(select(AttendanceVisit).where(col(AttendanceVisit.id).in_(visit_ids))).all()
    sessions = {v.session_id for v in visits}
    db.exec(select(SessionRow).where(col(SessionRow.id).in_(sessions))).all()
    keys = {attendee_key(v.person_id, v.anonymous_key) for v in visits}
    rows = db.exec(
        select(SessionAttendee).where(
            col(SessionAttendee.session_id).in_(sessions), col(SessionAttendee.attendee).in_(keys)
        )
    ).all()
    return {(row.session_id, row.attendee): row for row in rows}


Opening = tuple[int, int | None, str, datetime, str | None]  # session, person, channel, time, anonymous key


def _opening(
    session_id: int, person_id: int | None, channel: str, now: datetime, anonymous_key: str | None = None
) -> Opening:
    return (session_id, person_id, channel, now, anonymous_key)


def _open_run(db: DbSession, run: list[Opening]) -> list[int]:
    people = sorted({person for _, person, _, _, _ in run if person is not None})
    anonymous = sorted({key for _, person, _, _, key in run if person is None and key is not None})
    if people:
        # Two processes opening the same person's visit at once (tabs on two processes) find one open visit,
        # not none each: the people's rows are locked, in order, until the end of the transaction
        # (PostgreSQL; SQLite's writers take turns anyway).
        db.exec(select(Person.id).where(col(Person.id).in_(people)).order_by(col(Person.id)).with_for_update()).all()
    who = []
    if people:
        who.append(col(AttendanceVisit.person_id).in_(people))
    if anonymous:
        who.append(col(AttendanceVisit.anonymous_key).in_(anonymous))
    latest: dict[tuple[int, str, str], AttendanceVisit] = {}
    if who:
        earlier = db.exec(
            select(AttendanceVisit).where(
                col(AttendanceVisit.session_id).in_({o[0] for o in run}),
                col(AttendanceVisit.channel).in_({o[2] for o in run}),
                or_(*who),
            )
        ).all()
        for visit in earlier:
            key = (visit.session_id, attendee_key(visit.person_id, visit.anonymous_key), visit.channel)
            if key not in latest or (visit.joined_at, visit.id or 0) > (latest[key].joined_at, latest[key].id or 0):
                latest[key] = visit
    visits: list[AttendanceVisit] = []
    new: list[AttendanceVisit] = []
    for session_id, person_id, channel, now, anonymous_key in run:
        key = (session_id, attendee_key(person_id, anonymous_key), channel)
        visit = latest.get(key)
        if visit is not None and (visit.left_at is None or now - visit.left_at <= timedelta(seconds=GRACE_S)):
            visit.left_at = None
            visit.last_seen_at = now
        else:
            visit = AttendanceVisit(
                session_id=session_id,
                person_id=person_id,
                anonymous_key=anonymous_key,
                channel=channel,
                joined_at=now,
                last_seen_at=now,
            )
            new.append(visit)
            latest[key] = visit
        db.add(visit)
        visits.append(visit)
    db.flush()
    _add_channels(db, new)
    return [visit.id or 0 for visit in visits]


def _add_channels(db: DbSession, new: list[AttendanceVisit]) -> None:
    """Mark each new visit's channel on its attendee's row (made when missing)."""
    if not new:
        return
    keys = {(v.session_id, attendee_key(v.person_id, v.anonymous_key)) for v in new}
    rows = {
        (row.session_id, row.attendee): row
        for row in db.exec(
            select(SessionAttendee).where(
                col(SessionAttendee.session_id).in_({k[0] for k in keys}),
                col(SessionAttendee.attendee).in_({k[1] for k in keys}),
            )
        ).all()
    }
    for visit in new:
        key = (visit.session_id, attendee_key(visit.person_id, visit.anonymous_key))
        row = rows.get(key)
        if row is None:
            row = rows[key] = SessionAttendee(session_id=key[0], attendee=key[1], person_id=visit.person_id)
        row.channels |= CHANNEL_BITS.get(visit.channel, 0)
        db.add(row)


def _attendee(
    db: DbSession,
    session_id: int,
    person_id: int | None,
    anonymous_key: str | None,
    known: dict[tuple[int, str], SessionAttendee] | None = None,
) -> SessionAttendee:
    """The attendee's row of the session, made if missing (``known``: rows already read, by session and key)."""
    key = attendee_key(person_id, anonymous_key)
    row = known.get((session_id, key)) if known is not None else None
    if row is None:
        row = db.exec(
            select(SessionAttendee).where(SessionAttendee.session_id == session_id, SessionAttendee.attendee == key)
        ).first()
    if row is None:
        row = SessionAttendee(session_id=session_id, attendee=key, person_id=person_id)
    if known is not None:
        known[(session_id, key)] = row
    db.add(row)
    return row


def _raise_peak(db: DbSession, session_id: int) -> None:
    open_now = int(
        db.scalar(
            sa_select(func.count()).where(
                AttendanceVisit.session_id == session_id,
                col(AttendanceVisit.left_at).is_(None),
                col(AttendanceVisit.channel).in_(TIMED),
            )
        )
        or 0
    )
    stats = db.get(SessionStats, session_id)
    if stats is None:
        stats = SessionStats(session_id=session_id, peak_concurrent=0)
    if open_now > stats.peak_concurrent:
        stats.peak_concurrent = open_now
        db.add(stats)


def touch_visits(db: DbSession, visit_ids: list[int], now: datetime) -> None:
    if visit_ids:
        db.exec(update(AttendanceVisit).where(col(AttendanceVisit.id).in_(visit_ids)).values(last_seen_at=now))


def close_visit(db: DbSession, visit_id: int, now: datetime) -> None:
    visit = db.get(AttendanceVisit, visit_id)
    if visit is not None and visit.left_at is None:
        _close(db, visit, now)


def close_stale_visits(db: DbSession, before: datetime | None = None, channel: str | None = None) -> int:
    """Close visits still open (after a crash) at their last heartbeat; returns how many.

    Args:
        before: only visits whose last heartbeat is older (those of a process that died while others
            run on); ``None`` closes every open visit (one process starting: none can be live).
        channel: only visits of this channel.
    """
    query = select(AttendanceVisit).where(col(AttendanceVisit.left_at).is_(None))
    if channel is not None:
        query = query.where(AttendanceVisit.channel == channel)
    if before is not None:
        # Several processes may sweep at once: each visit is closed by one (rows locked by another are skipped).
        query = query.where(col(AttendanceVisit.last_seen_at) < before).with_for_update(skip_locked=True)
    stale = db.exec(query).all()
    for visit in stale:
        _close(db, visit, visit.last_seen_at)
    return len(stale)


def _close(
    db: DbSession, visit: AttendanceVisit, at: datetime, known: dict[tuple[int, str], SessionAttendee] | None = None
) -> None:
    """Close a visit and add its time not yet counted (within the session's slot) to its attendee."""
    visit.left_at = at
    visit.last_seen_at = at
    db.add(visit)
    if visit.channel in TIMED:
        session = db.get(SessionRow, visit.session_id)
        start = max(visit.joined_at, visit.counted_to or visit.joined_at, session.starts_at if session else at)
        end = min(at, session.ends_at if session else at)
        if end > start:
            _attendee(db, visit.session_id, visit.person_id, visit.anonymous_key, known).attended_s += (
                end - start
            ).total_seconds()
    visit.counted_to = at


# Rebuilding the aggregates from the visits ----------------------------------------------------------


def epoch_seconds(db: DbSession, column: Any) -> ColumnElement[float]:  # noqa: ANN401 - a column
    """A time column as seconds since 1970, in SQL (``julianday`` on SQLite, ``extract`` on PostgreSQL)."""
    if db.get_bind().dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return func.extract("epoch", column)


def _pair(db: DbSession, fn: str, a: Any, b: Any) -> ColumnElement[float]:  # noqa: ANN401
    """max/min of two values: SQLite's two-argument max() and min(), PostgreSQL's greatest() and least()."""
    if db.get_bind().dialect.name == "sqlite":
        return getattr(func, fn)(a, b)
    return (func.greatest if fn == "max" else func.least)(a, b)


def rebuild(db: DbSession, session_ids: Iterable[int]) -> None:
    """Recompute the attendees and peaks of these sessions from their visits (in SQL)."""
    ids = list(session_ids)
    if not ids:
        return
    v, s = AttendanceVisit, SessionRow
    db.execute(delete(SessionAttendee).where(col(SessionAttendee.session_id).in_(ids)))
    db.execute(delete(SessionStats).where(col(SessionStats.session_id).in_(ids)))
    left = func.coalesce(v.left_at, v.last_seen_at)
    overlap = _pair(
        db,
        "max",
        literal(0.0),
        _pair(db, "min", epoch_seconds(db, left), epoch_seconds(db, s.ends_at))
        - _pair(db, "max", epoch_seconds(db, v.joined_at), epoch_seconds(db, s.starts_at)),
    )
    key = func.coalesce(literal("p:") + func.cast(v.person_id, String()), literal("a:") + v.anonymous_key)
    bit = sql_case(*((v.channel == name, value) for name, value in CHANNEL_BITS.items()), else_=0)
    timed = sql_case((col(v.channel).in_(TIMED), overlap), else_=0.0)
    rows = (
        sa_select(v.session_id, key, func.max(v.person_id), func.sum(func.distinct(bit)), func.sum(timed))
        .join(s, s.id == v.session_id)
        .where(col(v.session_id).in_(ids))
        .group_by(v.session_id, key)
    )
    db.execute(
        insert(SessionAttendee).from_select(["session_id", "attendee", "person_id", "channels", "attended_s"], rows)
    )
    where = (col(v.session_id).in_(ids), col(v.channel).in_(TIMED))
    joins = sa_select(
        v.session_id.label("sid"), epoch_seconds(db, v.joined_at).label("t"), literal(1).label("d")
    ).where(*where)
    leaves = sa_select(v.session_id.label("sid"), epoch_seconds(db, left).label("t"), literal(-1).label("d")).where(
        *where
    )
    steps = union_all(joins, leaves).subquery()
    running = sa_select(
        steps.c.sid, func.sum(steps.c.d).over(partition_by=steps.c.sid, order_by=(steps.c.t, steps.c.d)).label("n")
    ).subquery()
    peaks = sa_select(running.c.sid, func.max(running.c.n)).group_by(running.c.sid)
    db.execute(insert(SessionStats).from_select(["session_id", "peak_concurrent"], peaks))
    db.execute(update(AttendanceVisit).where(col(v.session_id).in_(ids)).values(counted_to=left))


def purge_visits(db: DbSession, ended_before: datetime) -> int:
    """Delete the raw visits of sessions that ended before ``ended_before``; their aggregates (attendee rows
    and peaks) stay, so the key figures are unchanged. Returns how many visits were deleted."""
    ended = sa_select(SessionRow.id).where(SessionRow.ends_at < ended_before)
    # Visits still open are left alone: they are closed (and counted) first.
    result = db.execute(
        delete(AttendanceVisit).where(
            col(AttendanceVisit.session_id).in_(ended), col(AttendanceVisit.left_at).is_not(None)
        )
    )
    return int(result.rowcount or 0)


def own_visit(
    db: DbSession, visit_id: int, session_id: int, person_id: int | None, anonymous_key: str | None
) -> AttendanceVisit | None:
    """The visit if it is this person's (or this anonymous viewer's) in this session, else None."""
    visit = db.get(AttendanceVisit, visit_id)
    if visit is None or visit.session_id != session_id:
        return None
    if person_id is not None:
        return visit if visit.person_id == person_id else None
    return visit if visit.person_id is None and visit.anonymous_key == anonymous_key else None


def beacon(
    db: DbSession,
    session_id: int,
    person_id: int | None,
    anonymous_key: str | None,
    channel: str,
    event: str,
    visit_id: int | None,
    now: datetime,
) -> int | None:
    """Apply a page's attendance report; returns the visit id (None if the visit is not theirs)."""
    if event == "join":
        return open_visit(db, session_id, person_id, channel, now, anonymous_key=anonymous_key)
    visit = own_visit(db, visit_id or 0, session_id, person_id, anonymous_key)
    if visit is None or visit.channel != channel:
        return None
    if event == "heartbeat":
        touch_visits(db, [visit.id or 0], now)
    elif visit.left_at is None:
        _close(db, visit, now)
    return visit.id
