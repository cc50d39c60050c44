"""The programme: forums and their sessions, filters, registrations and personal agendas."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, or_
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from server.accounts import require_organizer
from server.errors import Conflict, InvalidInput, NotFound, NotSignedIn
from server.schemas import (
    ForumCreate,
    ForumPublic,
    ForumUpdate,
    PersonBrief,
    Programme,
    ProgrammeQuery,
    SessionCreate,
    SessionFields,
    SessionPublic,
    SessionUpdate,
)
from server.storage.models import (
    Forum,
    Person,
    Registration,
    Session,
    SessionActionLine,
    SessionRole,
    SessionSdg,
    SessionTag,
)
from server.storage.types import utcnow
from server.vocab import SESSION_TYPE_LABELS, TRACK_LABELS, SessionType, Track

# Forums -------------------------------------------------------------------------------------------


def create_forum(db: DbSession, actor: Person | None, data: ForumCreate) -> Forum:
    require_organizer(actor)
    if db.exec(select(Forum).where(Forum.slug == data.slug)).first() is not None:
        raise Conflict(f"slug: a forum called {data.slug!r} exists")
    forum = Forum(**data.model_dump())
    db.add(forum)
    db.flush()
    return forum


def get_forum(db: DbSession, forum_id: int) -> Forum:
    forum = db.get(Forum, forum_id)
    if forum is None:
        raise NotFound(f"no forum with id {forum_id}")
    return forum


def current_forum(db: DbSession) -> Forum | None:
    """The edition shown by default: the one that starts last."""
    return db.exec(select(Forum).order_by(col(Forum.start_date).desc(), col(Forum.id).desc())).first()


def list_forums(db: DbSession) -> list[Forum]:
    return list(db.exec(select(Forum).order_by(col(Forum.start_date).desc())).all())


def update_forum(db: DbSession, actor: Person | None, forum_id: int, data: ForumUpdate) -> Forum:
    require_organizer(actor)
    forum = get_forum(db, forum_id)
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(forum, key, value)
    if forum.end_date < forum.start_date:
        raise InvalidInput.field("end_date", "is before start_date")
    db.add(forum)
    return forum


def delete_forum(db: DbSession, actor: Person | None, forum_id: int) -> None:
    require_organizer(actor)
    db.delete(get_forum(db, forum_id))


def forum_public(forum: Forum) -> ForumPublic:
    return ForumPublic.model_validate(forum, from_attributes=True)


# Sessions -----------------------------------------------------------------------------------------


def _new_code(db: DbSession, forum_id: int) -> str:
    while True:
        code = f"S-{secrets.token_hex(3).upper()}"
        if not db.exec(select(Session.id).where(Session.forum_id == forum_id, Session.code == code)).first():
            return code


def _set_links(db: DbSession, session_id: int, fields: dict[str, Any]) -> None:
    for key, model, column in (
        ("action_lines", SessionActionLine, "action_line"),
        ("sdgs", SessionSdg, "sdg"),
        ("tags", SessionTag, "tag"),
    ):
        if fields.get(key) is None:
            continue
        for row in db.exec(select(model).where(model.session_id == session_id)).all():
            db.delete(row)
        db.flush()
        for value in fields[key]:
            db.add(model(session_id=session_id, **{column: value}))


def write_session(db: DbSession, forum_id: int, code: str | None, data: SessionFields) -> tuple[Session, bool]:
    """Create a session, or update the one with the same code in the forum. Returns (session, created)."""
    fields = data.model_dump()
    scalars = {k: v for k, v in fields.items() if k not in {"action_lines", "sdgs", "tags", "forum_id", "code"}}
    existing = None
    if code:
        existing = db.exec(select(Session).where(Session.forum_id == forum_id, Session.code == code)).first()
    if existing is None:
        session = Session(forum_id=forum_id, code=code or _new_code(db, forum_id), **scalars)
        created = True
    else:
        session = existing
        for key, value in scalars.items():
            setattr(session, key, value)
        session.updated_at = utcnow()
        created = False
    db.add(session)
    db.flush()
    _set_links(db, session.id or 0, fields)
    return session, created


def create_session(db: DbSession, actor: Person | None, data: SessionCreate) -> Session:
    require_organizer(actor)
    get_forum(db, data.forum_id)
    if (
        data.code
        and db.exec(select(Session.id).where(Session.forum_id == data.forum_id, Session.code == data.code)).first()
    ):
        raise Conflict(f"code: a session with code {data.code!r} exists in this forum")
    session, _ = write_session(db, data.forum_id, data.code, data)
    return session


def get_session(db: DbSession, session_id: int) -> Session:
    session = db.get(Session, session_id)
    if session is None:
        raise NotFound(f"no session with id {session_id}")
    return session


def update_session(db: DbSession, actor: Person | None, session_id: int, data: SessionUpdate) -> Session:
    require_organizer(actor)
    session = get_session(db, session_id)
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if key in {"action_lines", "sdgs", "tags"}:
            continue
        if value is None and key not in {"track", "capacity"}:
            raise InvalidInput.field(key, "cannot be null")
        setattr(session, key, value)
    if session.ends_at <= session.starts_at:
        raise InvalidInput.field("ends_at", "must be after starts_at")
    session.updated_at = utcnow()
    db.add(session)
    db.flush()
    _set_links(db, session_id, changes)
    return session


def delete_session(db: DbSession, actor: Person | None, session_id: int) -> None:
    require_organizer(actor)
    db.delete(get_session(db, session_id))


def to_public(db: DbSession, sessions: Sequence[Session]) -> list[SessionPublic]:
    """Sessions with their Action Lines, SDGs, tags, moderators, speakers and registration count."""
    ids = [s.id for s in sessions]
    links: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    if ids:
        for al in db.exec(select(SessionActionLine).where(col(SessionActionLine.session_id).in_(ids))).all():
            links[al.session_id]["action_lines"].append(al.action_line)
        for sdg in db.exec(select(SessionSdg).where(col(SessionSdg.session_id).in_(ids))).all():
            links[sdg.session_id]["sdgs"].append(sdg.sdg)
        for tag in db.exec(select(SessionTag).where(col(SessionTag.session_id).in_(ids))).all():
            links[tag.session_id]["tags"].append(tag.tag)
        for role, person in db.exec(
            select(SessionRole, Person)
            .join(Person, Person.id == SessionRole.person_id)
            .where(col(SessionRole.session_id).in_(ids))
            .order_by(col(Person.name))
        ).all():
            brief = PersonBrief(
                id=person.id or 0, name=person.name, organisation=person.organisation, title=person.title
            )
            links[role.session_id][role.role + "s"].append(brief)
        counts = db.exec(
            select(Registration.session_id, func.count())
            .where(col(Registration.session_id).in_(ids))
            .group_by(col(Registration.session_id))
        ).all()
    registered = dict(counts) if ids else {}
    out = []
    for s in sessions:
        extra = links[s.id or 0]
        out.append(
            SessionPublic(
                id=s.id or 0,
                forum_id=s.forum_id,
                code=s.code,
                title=s.title,
                description=s.description,
                type=SessionType(s.type),
                type_label=SESSION_TYPE_LABELS[SessionType(s.type)],
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                language=s.language,
                action_lines=sorted(extra["action_lines"], key=lambda c: int(c[1:])),
                sdgs=sorted(extra["sdgs"]),
                track=Track(s.track) if s.track else None,
                track_label=TRACK_LABELS[Track(s.track)] if s.track else None,
                tags=sorted(extra["tags"]),
                capacity=s.capacity,
                status=s.status,  # type: ignore[arg-type]
                moderators=extra["moderators"],
                speakers=extra["speakers"],
                registered=registered.get(s.id, 0),
            )
        )
    return out


def session_public(db: DbSession, session_id: int) -> SessionPublic:
    return to_public(db, [get_session(db, session_id)])[0]


def programme(db: DbSession, query: ProgrammeQuery) -> Programme:
    """The programme of one forum (the current one unless named), filtered and in time order."""
    forum = get_forum(db, query.forum) if query.forum is not None else current_forum(db)
    if forum is None:
        return Programme(forum=None, total=0, sessions=[])
    stmt = select(Session).where(Session.forum_id == forum.id)
    if query.day is not None:
        zone = ZoneInfo(query.tz or forum.timezone)
        day_start = datetime.combine(query.day, time(0), tzinfo=zone)
        day_end = datetime.combine(query.day + timedelta(days=1), time(0), tzinfo=zone)
        stmt = stmt.where(col(Session.starts_at) < day_end, col(Session.ends_at) > day_start)
    for value, column in (
        (query.type, Session.type),
        (query.track, Session.track),
        (query.language, Session.language),
        (query.status, Session.status),
    ):
        if value is not None:
            stmt = stmt.where(column == str(value))
    if query.action_line:
        code = query.action_line.upper()
        stmt = stmt.where(
            exists().where(SessionActionLine.session_id == Session.id, SessionActionLine.action_line == code)
        )
    if query.sdg is not None:
        stmt = stmt.where(exists().where(SessionSdg.session_id == Session.id, SessionSdg.sdg == query.sdg))
    if query.tag:
        stmt = stmt.where(exists().where(SessionTag.session_id == Session.id, SessionTag.tag == query.tag.lower()))
    if query.q and query.q.strip():
        text = query.q.strip()
        stmt = stmt.where(
            or_(
                col(Session.title).icontains(text, autoescape=True),
                col(Session.description).icontains(text, autoescape=True),
                col(Session.code).icontains(text, autoescape=True),
                exists().where(
                    SessionTag.session_id == Session.id, col(SessionTag.tag).icontains(text, autoescape=True)
                ),
            )
        )
    total = db.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = db.exec(stmt.order_by(col(Session.starts_at), col(Session.id)).offset(query.offset).limit(query.limit)).all()
    return Programme(forum=forum_public(forum), total=total, sessions=to_public(db, rows))


# Registrations ------------------------------------------------------------------------------------


def register_for_session(db: DbSession, person: Person | None, session_id: int) -> Registration:
    """Add a session to a person's agenda (idempotent).

    Raises:
        Conflict: the session is full or has ended.
    """
    if person is None:
        raise NotSignedIn("sign in to register for a session")
    session = get_session(db, session_id)
    existing = db.exec(
        select(Registration).where(Registration.person_id == person.id, Registration.session_id == session_id)
    ).first()
    if existing is not None:
        return existing
    if session.status == "ended":
        raise Conflict("this session has ended")
    if session.capacity is not None:
        taken = db.exec(select(func.count()).where(Registration.session_id == session_id)).one()
        if taken >= session.capacity:
            raise Conflict(f"this session is full ({session.capacity} places)")
    registration = Registration(person_id=person.id or 0, session_id=session_id)
    db.add(registration)
    db.flush()
    return registration


def unregister_from_session(db: DbSession, person: Person | None, session_id: int) -> None:
    if person is None:
        raise NotSignedIn("sign in first")
    get_session(db, session_id)
    for row in db.exec(
        select(Registration).where(Registration.person_id == person.id, Registration.session_id == session_id)
    ).all():
        db.delete(row)


def agenda(db: DbSession, person_id: int) -> list[SessionPublic]:
    rows = db.exec(
        select(Session)
        .join(Registration, Registration.session_id == Session.id)
        .where(Registration.person_id == person_id)
        .order_by(col(Session.starts_at))
    ).all()
    return to_public(db, rows)


def is_registered(db: DbSession, person_id: int, session_id: int) -> bool:
    return (
        db.exec(
            select(Registration.id).where(Registration.person_id == person_id, Registration.session_id == session_id)
        ).first()
        is not None
    )
