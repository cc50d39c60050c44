"""Attendance capture: one visit per person per session per channel, written as people come and go.

A reconnect within the grace period continues the same visit (a flaky network is not two visits);
a heartbeat keeps ``last_seen_at`` current, so a visit left open by a crash is closed at its last
heartbeat when the server starts again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session as DbSession
from sqlmodel import col, select, update

from server.storage.models import AttendanceVisit

# A reconnect within this many seconds continues the visit.
GRACE_S = 60
# How often an open visit's last_seen_at is refreshed while connected.
HEARTBEAT_S = 30


def open_visit(db: DbSession, session_id: int, person_id: int, channel: str, now: datetime) -> int:
    """Start a visit, or continue the latest one if it is open or closed less than ``GRACE_S`` ago."""
    latest = db.exec(
        select(AttendanceVisit)
        .where(
            AttendanceVisit.session_id == session_id,
            AttendanceVisit.person_id == person_id,
            AttendanceVisit.channel == channel,
        )
        .order_by(col(AttendanceVisit.joined_at).desc(), col(AttendanceVisit.id).desc())
    ).first()
    if latest is not None and (latest.left_at is None or now - latest.left_at <= timedelta(seconds=GRACE_S)):
        latest.left_at = None
        latest.last_seen_at = now
        db.add(latest)
        db.flush()
        return latest.id or 0
    visit = AttendanceVisit(
        session_id=session_id, person_id=person_id, channel=channel, joined_at=now, last_seen_at=now
    )
    db.add(visit)
    db.flush()
    return visit.id or 0


def touch_visits(db: DbSession, visit_ids: list[int], now: datetime) -> None:
    if visit_ids:
        db.exec(update(AttendanceVisit).where(col(AttendanceVisit.id).in_(visit_ids)).values(last_seen_at=now))


def close_visit(db: DbSession, visit_id: int, now: datetime) -> None:
    visit = db.get(AttendanceVisit, visit_id)
    if visit is not None and visit.left_at is None:
        visit.left_at = now
        visit.last_seen_at = now
        db.add(visit)


def close_stale_visits(db: DbSession) -> int:
    """Close every visit still open (after a crash) at its last heartbeat; returns how many."""
    stale = db.exec(select(AttendanceVisit).where(col(AttendanceVisit.left_at).is_(None))).all()
    for visit in stale:
        visit.left_at = visit.last_seen_at
        db.add(visit)
    return len(stale)
