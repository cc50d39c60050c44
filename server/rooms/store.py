"""The rooms' persistence seam: rebuild a room from the database, and commit its durable events.

``commit`` runs in one transaction before anything is broadcast. It fills in the ids of new chat
messages, questions and polls, and turns a duplicate vote caught by the database's own key into
the room's ``already_voted`` error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from realtime.log import Event
from realtime.room import (
    CHAT_KEPT,
    MODERATION_KEPT,
    PollState,
    QuestionStatus,
    Role,
    Room,
    RoomError,
    RoomSettings,
    RoomState,
)
from realtime.room import ChatMessage as LiveChat
from realtime.room import Poll as LivePoll
from realtime.room import Question as LiveQuestion
from server.errors import NotFound
from server.rooms import cafe as cafe_store
from server.storage.models import (
    CaptionRecord,
    ChatMessage,
    ModerationAction,
    Person,
    Poll,
    PollVote,
    Question,
    QuestionVote,
    RoomRecord,
    Session,
    SessionRole,
)

# Presence and hands live only in memory: after a restart people reconnect and raise hands again.
EPHEMERAL = frozenset({"presence.changed", "hand.raised", "hand.lowered", "caption.partial", "media.muted"})


class RoomMoved(RoomError):
    """Another process owns the room now (its epoch is in the room's row)."""


def to_time(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def to_seconds(moment: datetime) -> float:
    return moment.timestamp()


def actors_of(db: DbSession, wanted: list[tuple[int, int]]) -> list[tuple[Person, Role] | None]:
    """For each ``(person_id, session_id)``: the signed-in person and their role in the session, or ``None``
    for no such person; two statements for any number of them (a plenary's audience arrives together)."""
    people = {p.id: p for p in db.exec(select(Person).where(col(Person.id).in_({pid for pid, _ in wanted}))).all()}
    roles: dict[tuple[int, int], set[str]] = {}
    for person_id, session_id, role in db.exec(
        select(SessionRole.person_id, SessionRole.session_id, SessionRole.role).where(
            col(SessionRole.person_id).in_(list(people)), col(SessionRole.session_id).in_({sid for _, sid in wanted})
        )
    ).all():
        roles.setdefault((person_id, session_id), set()).add(role)
    found: list[tuple[Person, Role] | None] = []
    for person_id, session_id in wanted:
        person = people.get(person_id)
        found.append(None if person is None else (person, _role(person, roles.get((person_id, session_id), set()))))
    return found


def role_of(db: DbSession, person: Person, session_id: int) -> Role:
    """The person's role in this session, from the database (never from the client)."""
    if person.is_organizer:
        return Role.ORGANIZER
    roles = set(
        db.exec(
            select(SessionRole.role).where(SessionRole.session_id == session_id, SessionRole.person_id == person.id)
        ).all()
    )
    return _role(person, roles)


def _role(person: Person, roles: set[str]) -> Role:
    if person.is_organizer:
        return Role.ORGANIZER
    if "moderator" in roles:
        return Role.MODERATOR
    if "speaker" in roles:
        return Role.SPEAKER
    if "captioner" in roles:
        return Role.CAPTIONER
    return Role.PARTICIPANT


def _initial_state(session: Session) -> RoomState:
    return {"live": RoomState.LIVE, "ended": RoomState.ENDED}.get(session.status, RoomState.CLOSED)


def load_room(db: DbSession, session_id: int) -> Room:
    """Rebuild a room from what was committed (a new epoch: the event history is not kept)."""
    session = db.get(Session, session_id)
    if session is None:
        raise NotFound(f"no session with id {session_id}")
    record = db.get(RoomRecord, session_id)
    if record is None:
        settings = RoomSettings(state=_initial_state(session))
    else:
        settings = RoomSettings(
            RoomState(record.state),
            record.locked,
            record.pre_approval,
            record.slow_mode_s,
            list(record.stage),
            list(record.muted),
            list(record.removed),
        )
    room = Room(session_id, settings, language=session.language, cafe=session.type == cafe_store.CAFE_TYPE)
    if room.cafe is not None:
        cafe_store.load(db, room)
    if settings.stage:
        people = db.exec(select(Person).where(col(Person.id).in_(settings.stage))).all()
        room.load_names({p.id or 0: p.name for p in people})
    chats = db.exec(
        select(ChatMessage)
        .where(ChatMessage.session_id == session_id, col(ChatMessage.deleted_at).is_(None))
        .order_by(col(ChatMessage.id).desc())
        .limit(CHAT_KEPT)
    ).all()
    for m in reversed(chats):
        room.load_chat(LiveChat(m.id or 0, m.person_id, m.name, m.text, to_seconds(m.created_at)))
    voters: dict[int, set[int]] = {}
    for vote in db.exec(select(QuestionVote).join(Question).where(Question.session_id == session_id)).all():
        voters.setdefault(vote.question_id, set()).add(vote.person_id)
    for q in db.exec(select(Question).where(Question.session_id == session_id).order_by(col(Question.id))).all():
        room.load_question(
            LiveQuestion(
                q.id or 0,
                q.person_id,
                q.name,
                q.text,
                q.anonymous,
                QuestionStatus(q.status),
                to_seconds(q.created_at),
                q.pinned,
                q.answer,
                voters.get(q.id or 0, set()),
            )
        )
    for poll in db.exec(select(Poll).where(Poll.session_id == session_id).order_by(col(Poll.id))).all():
        ballots = db.exec(select(PollVote).where(PollVote.poll_id == poll.id)).all()
        room.load_poll(
            LivePoll(
                poll.id or 0,
                poll.question,
                list(poll.options),
                poll.multiple,
                poll.results,
                PollState(poll.state),
                {b.person_id: tuple(b.choice) for b in ballots},
            )
        )
    entries = db.exec(
        select(ModerationAction)
        .where(ModerationAction.session_id == session_id)
        .order_by(col(ModerationAction.id).desc())
        .limit(MODERATION_KEPT)
    ).all()
    for entry in reversed(entries):
        room.load_moderation(
            {
                "actor_id": entry.actor_id,
                "actor": entry.actor_name,
                "action": entry.action,
                "target_person_id": entry.target_person_id,
                "detail": entry.detail,
                "at": to_seconds(entry.created_at),
            }
        )
    return room


def caption_data(caption: CaptionRecord) -> dict[str, Any]:
    return {
        "id": caption.id,
        "speaker_id": caption.speaker_id,
        "speaker": caption.speaker_name,
        "track": caption.track,
        "language": caption.language,
        "text": caption.text,
        "start_s": caption.start_s,
        "end_s": caption.end_s,
        "at": caption.started_at.timestamp(),
    }


def transcript(db: DbSession, session_id: int, track: str = "machine") -> list[dict[str, Any]]:
    """All final captions of a session's track in the order they were spoken, across speakers.

    ``start_s``/``end_s`` are on each speaker's stream clock; ``offset_s`` is on the session's clock
    (seconds since the first caption began), which is what a transcript file uses.
    """
    rows = db.exec(
        select(CaptionRecord)
        .where(CaptionRecord.session_id == session_id, CaptionRecord.track == track)
        .order_by(col(CaptionRecord.started_at), col(CaptionRecord.id))
    ).all()
    captions = [caption_data(row) for row in rows]
    origin = captions[0]["at"] if captions else 0.0
    for caption in captions:
        caption["offset_s"] = round(caption["at"] - origin, 3)
    return captions


def _record(db: DbSession, session_id: int, room: Room) -> RoomRecord:
    record = db.get(RoomRecord, session_id)
    if record is None:
        current = room.settings()
        record = RoomRecord(
            session_id=session_id,
            state=current.state.value,
            locked=current.locked,
            pre_approval=current.pre_approval,
            slow_mode_s=current.slow_mode_s,
            stage=current.stage,
            muted=current.muted,
            removed=current.removed,
        )
    return record


def _with(values: list[int], item: int, present: bool) -> list[int]:
    items = [v for v in values if v != item]
    return [*items, item] if present else items


def claim_room(db: DbSession, session_id: int) -> Room:
    """Rebuild a room for a process that has just become its owner, and fence out the previous owner.

    The room's row is locked and stamped with the new epoch in the same transaction that reads the
    state, so every commit of the previous owner is either in what was read or refused (``commit`` with
    ``fenced``).

    Raises:
        NotFound: no such session.
    """
    session = db.get(Session, session_id)
    if session is None:
        raise NotFound(f"no session with id {session_id}")
    record = db.get(RoomRecord, session_id, with_for_update=True)
    if record is None:
        db.add(RoomRecord(session_id=session_id, state=_initial_state(session).value))
        db.flush()
    room = load_room(db, session_id)
    record = db.get(RoomRecord, session_id)
    assert record is not None
    record.owner_epoch = room.log.epoch
    db.add(record)
    db.flush()
    return room


def commit(db: DbSession, room: Room, events: list[Event], now: float, fenced: bool = False) -> list[Event]:
    """Write the durable events of one command in one transaction (ids filled in); returns the events.

    Args:
        fenced: the room is shared by several processes: refuse unless this room's epoch still owns it.

    Raises:
        RoomError: ``already_voted`` when the database's key refuses a second vote; ``room_moved`` when
            another process has taken the room over (``fenced``).
    """
    at = to_time(now)
    if fenced:
        owner = db.get(RoomRecord, room.session_id, with_for_update=True)
        if owner is None or owner.owner_epoch != room.log.epoch:
            raise RoomMoved("room_moved", "the room moved to another process; please try again")
    record = _record(db, room.session_id, room)
    touched_record = False
    for event in events:
        if not event.durable or event.kind in EPHEMERAL:
            continue
        data: dict[str, Any] = event.data
        kind = event.kind
        if kind == "chat.posted":
            row = ChatMessage(
                session_id=room.session_id,
                person_id=data["person_id"],
                name=data["name"],
                text=data["text"],
                created_at=at,
            )
            data["id"] = _insert(db, row)
        elif kind == "chat.deleted":
            message = db.get(ChatMessage, data["id"])
            if message is not None:
                message.deleted_at = at
                db.add(message)
        elif kind == "question.asked":
            q = data["question"]
            row = Question(
                session_id=room.session_id,
                person_id=q["person_id"],
                name=q["name"],
                text=q["text"],
                anonymous=q["anonymous"],
                status=q["status"],
                created_at=at,
                updated_at=at,
            )
            q["id"] = _insert(db, row)
        elif kind == "question.changed":
            q = data["question"]
            question = db.get(Question, q["id"])
            if question is not None:
                question.status, question.pinned, question.answer = q["status"], q["pinned"], q["answer"]
                question.updated_at = at
                db.add(question)
        elif kind == "question.voted":
            _vote(db, data, at)
        elif kind == "poll.changed":
            d = data["poll"]
            if not d["id"]:
                row = Poll(
                    session_id=room.session_id,
                    question=d["question"],
                    options=d["options"],
                    multiple=d["multiple"],
                    results=d["results"],
                    state=d["state"],
                    created_at=at,
                    updated_at=at,
                )
                d["id"] = _insert(db, row)
            else:
                poll = db.get(Poll, d["id"])
                if poll is not None:
                    poll.state, poll.updated_at = d["state"], at
                    db.add(poll)
        elif kind == "poll.voted":
            db.add(PollVote(poll_id=data["id"], person_id=data["voter_id"], choice=data["choice"], created_at=at))
            _flush_unique(db, "you already voted in this poll")
        elif kind == "caption.final":
            row = CaptionRecord(
                session_id=room.session_id,
                speaker_id=data["speaker_id"],
                speaker_name=data["speaker"],
                track=data["track"],
                language=data["language"],
                text=data["text"],
                start_s=data["start_s"],
                end_s=data["end_s"],
                started_at=to_time(data["at"]),
                created_at=at,
            )
            data["id"] = _insert(db, row)
        elif kind == "moderation.logged":
            db.add(
                ModerationAction(
                    session_id=room.session_id,
                    actor_id=data["actor_id"],
                    actor_name=data["actor"],
                    action=data["action"],
                    target_person_id=data["target_person_id"],
                    detail=data["detail"],
                    created_at=at,
                )
            )
        elif kind.startswith("cafe."):
            cafe_store.commit(db, room, event, at)
        else:
            touched_record |= _settings_change(db, record, room.session_id, kind, data)
    if touched_record:
        record.updated_at = at
        db.add(record)
    db.flush()
    return events


def _insert(db: DbSession, row: ChatMessage | Question | Poll | CaptionRecord) -> int | None:
    """Add a row and flush, so that its id can go out with the event."""
    db.add(row)
    db.flush()
    return row.id


def _vote(db: DbSession, data: dict[str, Any], at: datetime) -> None:
    if data["voted"]:
        db.add(QuestionVote(question_id=data["id"], person_id=data["voter_id"], created_at=at))
        _flush_unique(db, "you already voted for this question")
    else:
        vote = db.get(QuestionVote, (data["id"], data["voter_id"]))
        if vote is not None:
            db.delete(vote)


def _flush_unique(db: DbSession, message: str) -> None:
    try:
        db.flush()
    except IntegrityError:
        raise RoomError("already_voted", message) from None


def _settings_change(db: DbSession, record: RoomRecord, session_id: int, kind: str, data: dict[str, Any]) -> bool:
    if kind == "room.state":
        record.state = data["state"]
        session = db.get(Session, session_id)
        if session is not None and data["state"] in ("live", "ended"):
            session.status = data["state"]
            db.add(session)
    elif kind == "room.locked":
        record.locked = data["locked"]
    elif kind == "qa.settings":
        record.pre_approval = data["pre_approval"]
    elif kind == "chat.slow_mode":
        record.slow_mode_s = data["interval_s"]
    elif kind == "chat.muted":
        record.muted = _with(record.muted, data["person_id"], data["muted"])
    elif kind == "participant.removed":
        record.removed = _with(record.removed, data["person_id"], True)
    elif kind == "stage.joined":
        record.stage = _with(record.stage, data["person_id"], True)
    elif kind == "stage.left":
        record.stage = _with(record.stage, data["person_id"], False)
    else:
        raise ValueError(f"no storage for durable event {kind!r}")
    return True
