"""The tables. Codes (types, tracks, roles, ...) are stored as strings from ``server.vocab``.

Action Lines, SDGs and tags of a session are link tables rather than JSON lists so that the
programme filters and the key-figures reports can count them in SQL on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.storage.types import UTCDateTime, utcnow


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True)


class Forum(SQLModel, table=True):
    """One edition of a forum (e.g. a virtual edition spread over several weeks)."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    name: str = Field(max_length=200)
    theme: str = Field(default="", max_length=500)
    start_date: date
    end_date: date
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Session(SQLModel, table=True):
    """A session of the programme: a room people join live."""

    __table_args__ = (UniqueConstraint("forum_id", "code", name="uq_session_forum_code"),)

    id: int | None = Field(default=None, primary_key=True)
    forum_id: int = Field(sa_column=_fk("forum.id"))
    code: str = Field(max_length=64)
    title: str = Field(max_length=300)
    description: str = Field(default="", max_length=10_000)
    type: str = Field(max_length=40, index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    language: str = Field(default="en", max_length=2)
    track: str | None = Field(default=None, max_length=40, index=True)
    capacity: int | None = None
    status: str = Field(default="scheduled", max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SessionActionLine(SQLModel, table=True):
    __tablename__ = "session_action_line"

    session_id: int = Field(sa_column=Column(Integer, ForeignKey("session.id", ondelete="CASCADE"), primary_key=True))
    action_line: str = Field(sa_column=Column(String(3), primary_key=True))


class SessionSdg(SQLModel, table=True):
    __tablename__ = "session_sdg"

    session_id: int = Field(sa_column=Column(Integer, ForeignKey("session.id", ondelete="CASCADE"), primary_key=True))
    sdg: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))


class SessionTag(SQLModel, table=True):
    __tablename__ = "session_tag"

    session_id: int = Field(sa_column=Column(Integer, ForeignKey("session.id", ondelete="CASCADE"), primary_key=True))
    tag: str = Field(sa_column=Column(String(50), primary_key=True))


class Person(SQLModel, table=True):
    """Someone with an account. Gender, country and stakeholder type are optional and each is
    kept only with its own recorded consent (the ``*_consent_at`` time)."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    name: str = Field(max_length=200)
    organisation: str = Field(default="", max_length=200)
    country: str | None = Field(default=None, max_length=2)
    region: str | None = Field(default=None, max_length=20)
    country_consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    gender: str | None = Field(default=None, max_length=20)
    gender_consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stakeholder_type: str | None = Field(default=None, max_length=40)
    stakeholder_consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    high_level: bool = False
    title: str = Field(default="", max_length=200)
    is_organizer: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Caption display settings as compact JSON ({"size": …, "contrast": …, "position": …}; accounts.py
    # CAPTION_DISPLAY lists the values), so they follow the person across devices. "" when never set.
    caption_display: str = Field(default="", max_length=100)


class SessionRole(SQLModel, table=True):
    """A moderator, speaker or captioner of one session."""

    __tablename__ = "session_role"
    __table_args__ = (UniqueConstraint("session_id", "person_id", "role", name="uq_session_role"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    person_id: int = Field(sa_column=_fk("person.id"))
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Invitation(SQLModel, table=True):
    """A link that makes whoever accepts it a moderator or speaker of a session, until it expires.

    Only a hash of the token is stored, so a database leak does not leak usable links.
    """

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    role: str = Field(max_length=16)
    created_by: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    accepted_by: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Registration(SQLModel, table=True):
    """A person's plan to attend a session: their personal agenda."""

    __table_args__ = (UniqueConstraint("person_id", "session_id", name="uq_registration"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(sa_column=_fk("person.id"))
    session_id: int = Field(sa_column=_fk("session.id"))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Live rooms -----------------------------------------------------------------------------------------


class RoomRecord(SQLModel, table=True):
    """The durable settings of a session's live room (its state machine lives in ``realtime.room``)."""

    __tablename__ = "room"

    session_id: int = Field(sa_column=Column(Integer, ForeignKey("session.id", ondelete="CASCADE"), primary_key=True))
    state: str = Field(default="closed", max_length=16)
    locked: bool = False
    pre_approval: bool = False
    slow_mode_s: int = 0
    stage: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    muted: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    removed: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # With several processes: the epoch of the room's owner. Commits of any other epoch are refused, so a
    # process that lost the room (its lease ran out while it was paused) cannot write behind the new owner.
    owner_epoch: str | None = Field(default=None, max_length=32)


class BusOutbox(SQLModel, table=True):
    """A bus message carrying committed events of a shared room, written in the transaction that committed them
    and deleted once Redis has taken the message: what an owner that died before publishing leaves for the next
    owner to publish (``server.rooms.outbox``). ``id`` only grows (AUTOINCREMENT on SQLite): the publish order."""

    __tablename__ = "bus_outbox"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=100, index=True)  # the bus topic, e.g. ``room.12``
    node: str = Field(max_length=32)  # the process that committed it (``SharedRoomService.node``)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class ChatMessage(SQLModel, table=True):
    __tablename__ = "chat_message"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    person_id: int = Field(sa_column=_fk("person.id"))
    name: str = Field(max_length=200)
    text: str = Field(max_length=2000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_by: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))


class Question(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    person_id: int = Field(sa_column=_fk("person.id"))
    name: str = Field(max_length=200)
    text: str = Field(max_length=1000)
    anonymous: bool = False
    status: str = Field(max_length=16)
    pinned: bool = False
    answer: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class QuestionVote(SQLModel, table=True):
    """One upvote; the primary key makes a second vote by the same person impossible."""

    __tablename__ = "question_vote"

    question_id: int = Field(sa_column=Column(Integer, ForeignKey("question.id", ondelete="CASCADE"), primary_key=True))
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    created_at: datetime = Field(sa_type=UTCDateTime)


class Poll(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    question: str = Field(max_length=300)
    options: list[str] = Field(sa_column=Column(JSON, nullable=False))
    multiple: bool = False
    results: str = Field(default="live", max_length=16)
    state: str = Field(default="draft", max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class PollVote(SQLModel, table=True):
    """One ballot per person per poll (primary key)."""

    __tablename__ = "poll_vote"

    poll_id: int = Field(sa_column=Column(Integer, ForeignKey("poll.id", ondelete="CASCADE"), primary_key=True))
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    choice: list[int] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class ModerationAction(SQLModel, table=True):
    __tablename__ = "moderation_action"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    actor_id: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    actor_name: str = Field(max_length=200)
    action: str = Field(max_length=40)
    target_person_id: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # type: ignore[type-arg]
    created_at: datetime = Field(sa_type=UTCDateTime)


class AttendanceVisit(SQLModel, table=True):
    """One visit of a person to a session on one channel. Reconnects within the grace period
    continue the visit; a visit left open by a crash is closed at its last heartbeat on restart."""

    __tablename__ = "attendance_visit"
    __table_args__ = (Index("ix_attendance_person_session", "person_id", "session_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    # None for an anonymous viewer (the lite page without an account), who is told apart by a random key
    # kept in their browser: counted in attendance, never in demographics.
    person_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=True)
    )
    anonymous_key: str | None = Field(default=None, max_length=64)
    channel: str = Field(default="live", max_length=16)  # live, lite, recording, transcript
    # How far this visit's time has been added to its SessionAttendee row (a continued visit adds the rest).
    counted_to: datetime | None = Field(default=None, sa_type=UTCDateTime)
    joined_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class SessionAttendee(SQLModel, table=True):
    """One attendee of one session, kept up to date as visits open and close: what the key figures read
    (a report over a million visits reads these rows, not the visits)."""

    __tablename__ = "session_attendee"
    __table_args__ = (UniqueConstraint("session_id", "attendee", name="uq_session_attendee"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    attendee: str = Field(max_length=80)  # "p:PERSON_ID" or "a:ANONYMOUS_KEY"
    person_id: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True))
    channels: int = 0  # a bit per channel (server/attendance.py CHANNEL_BITS)
    attended_s: float = 0.0  # time on the live and lite channels within the session's slot


class SessionStats(SQLModel, table=True):
    """Figures of a session kept as they happen: the most visitors at once."""

    __tablename__ = "session_stats"

    session_id: int = Field(sa_column=Column(Integer, ForeignKey("session.id", ondelete="CASCADE"), primary_key=True))
    peak_concurrent: int = 0


class ExternalViews(SQLModel, table=True):
    """Views of a session counted elsewhere (a video site, a social stream), imported as numbers."""

    __tablename__ = "external_views"
    __table_args__ = (UniqueConstraint("session_id", "platform", name="uq_external_views"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    platform: str = Field(max_length=60)
    views: int = Field(ge=0)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaptionRecord(SQLModel, table=True):
    """A final caption of a live session: what the transcript is made of."""

    __tablename__ = "caption"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    speaker_id: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    speaker_name: str = Field(max_length=200)
    track: str = Field(default="machine", max_length=16)
    language: str = Field(default="en", max_length=8)
    text: str = Field(max_length=2000)
    start_s: float  # on the speaker's stream clock
    end_s: float
    started_at: datetime = Field(sa_type=UTCDateTime)  # wall-clock time of the first word: the session's clock
    created_at: datetime = Field(sa_type=UTCDateTime)


class CafeRecord(SQLModel, table=True):
    """A knowledge café's state between restarts: its phase and the round running or last run."""

    __tablename__ = "cafe"

    session_id: int = Field(sa_column=Column(Integer, ForeignKey("session.id", ondelete="CASCADE"), primary_key=True))
    phase: str = Field(default="setup", max_length=16)
    round_no: int = 0
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    warned: bool = False
    reporting_table_id: int | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CafeTableRecord(SQLModel, table=True):
    """A table of a knowledge café: its topic, seats and host."""

    __tablename__ = "cafe_table"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    topic: str = Field(max_length=200)
    seats: int
    host_id: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CafeSeat(SQLModel, table=True):
    """Attendance at a café table: who sat at which table in which round (round 1 includes the seating
    before it). A person who moves within a round has a row for each table; ``left_at`` is set on leaving."""

    __tablename__ = "cafe_seat"
    __table_args__ = (Index("ix_cafe_seat_session_round", "session_id", "round_no"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    round_no: int
    table_id: int = Field(sa_column=_fk("cafe_table.id"))
    person_id: int = Field(sa_column=_fk("person.id"))
    seated_at: datetime = Field(sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CafeNote(SQLModel, table=True):
    """A card in a café table's shared notes; ``insight`` when the host marked it a key insight."""

    __tablename__ = "cafe_note"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column=_fk("session.id"))
    table_id: int = Field(sa_column=_fk("cafe_table.id"))
    round_no: int
    person_id: int | None = Field(default=None, sa_column=_fk("person.id", nullable=True, ondelete="SET NULL"))
    name: str = Field(max_length=200)
    text: str = Field(max_length=1000)
    insight: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
