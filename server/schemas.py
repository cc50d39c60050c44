"""Request and response bodies of the HTTP API, validated at the edge with pydantic.

Requests forbid unknown fields; every validator raises with a sentence a person can act on.
``parse(model, data)`` turns pydantic's errors into ``InvalidInput`` naming each field.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from realtime.room import CaptionTrack
from server import geo
from server.errors import FieldError, InvalidInput
from server.i18n import N_
from server.reports.figures import Scope
from server.vocab import ACTION_LINES, SDGS, Gender, SessionRoleName, SessionStatus, SessionType, StakeholderType, Track

M = TypeVar("M", bound=BaseModel)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 256
MAX_TAGS = 20


def _email(value: str) -> str:
    cleaned = value.strip().lower()
    if len(cleaned) > 254 or not EMAIL_RE.match(cleaned):
        raise ValueError(N_("not an email address"))
    return cleaned


def _country(value: str | None) -> str | None:
    return None if value in (None, "") else geo.normalize_country(value)


def _language(value: str) -> str:
    return geo.normalize_language(value)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as Europe/Zurich)") from None
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r}")
    return value


def _action_lines(values: list[str]) -> list[str]:
    cleaned = []
    for value in values:
        code = value.strip().upper()
        if code not in ACTION_LINES:
            raise ValueError(f"{value!r} is not a WSIS Action Line (C1 to C11)")
        cleaned.append(code)
    return sorted(set(cleaned), key=lambda c: int(c[1:]))


def _sdgs(values: list[int]) -> list[int]:
    for value in values:
        if value not in SDGS:
            raise ValueError(f"SDG {value} does not exist (there are 17, numbered 1 to 17)")
    return sorted(set(values))


def _tags(values: list[str]) -> list[str]:
    cleaned = []
    for value in values:
        tag = value.strip().lower()
        if not TAG_RE.match(tag):
            raise ValueError(f"tag {value!r} must be 1-50 lower-case letters, digits or '-'")
        cleaned.append(tag)
    if len(set(cleaned)) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return sorted(set(cleaned))


def _password(value: str) -> str:
    if len(value) < PASSWORD_MIN_CHARS:
        raise ValueError(f"must be at least {PASSWORD_MIN_CHARS} characters")
    if len(value) > PASSWORD_MAX_CHARS:
        raise ValueError(f"must be at most {PASSWORD_MAX_CHARS} characters")
    return value


def _slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueError("must be lower-case letters, digits or '-', starting with a letter or digit")
    return value


def _text(value: str) -> str:
    return value.strip()


Email = Annotated[str, AfterValidator(_email)]
Country = Annotated[str | None, AfterValidator(_country)]
Language = Annotated[str, AfterValidator(_language)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
ActionLines = Annotated[list[str], AfterValidator(_action_lines)]
Sdgs = Annotated[list[int], AfterValidator(_sdgs)]
Tags = Annotated[list[str], AfterValidator(_tags)]
Password = Annotated[str, AfterValidator(_password)]
Slug = Annotated[str, AfterValidator(_slug)]
Name = Annotated[str, AfterValidator(_text), Field(min_length=1, max_length=200)]
ShortText = Annotated[str, AfterValidator(_text), Field(max_length=200)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` into ``model``.

    Raises:
        InvalidInput: naming every field that is wrong and why.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc) from None


def invalid_from(exc: ValidationError) -> InvalidInput:
    fields = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        reason = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        reason = reason.removeprefix("Value error, ")
        if not location:
            # Model validators name their field as "field: reason" (they have no location of their own).
            head, _, rest = reason.partition(": ")
            location, reason = (head, rest) if rest and head.isidentifier() else ("body", reason)
        fields.append(FieldError(location, reason))
    message = "; ".join(f"{f.field}: {f.reason}" for f in fields)
    return InvalidInput(message, fields)


# Forums -------------------------------------------------------------------------------------------


class ForumCreate(Request):
    slug: Slug
    name: Name
    theme: Annotated[str, Field(max_length=500)] = ""
    start_date: date
    end_date: date
    timezone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _dates(self) -> ForumCreate:
        if self.end_date < self.start_date:
            raise ValueError("end_date: is before start_date")
        return self


class ForumUpdate(Request):
    name: Name | None = None
    theme: Annotated[str, Field(max_length=500)] | None = None
    start_date: date | None = None
    end_date: date | None = None
    timezone: TimeZone | None = None


class ForumPublic(BaseModel):
    id: int
    slug: str
    name: str
    theme: str
    start_date: date
    end_date: date
    timezone: str


# Sessions -----------------------------------------------------------------------------------------


class SessionFields(Request):
    title: Annotated[str, AfterValidator(_text), Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    type: SessionType
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    language: Language = "en"
    action_lines: ActionLines = []
    sdgs: Sdgs = []
    track: Track | None = None
    tags: Tags = []
    capacity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    status: SessionStatus = SessionStatus.SCHEDULED

    @model_validator(mode="after")
    def _times(self) -> SessionFields:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        return self


class SessionCreate(SessionFields):
    forum_id: int
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None


class SessionUpdate(Request):
    title: Annotated[str, AfterValidator(_text), Field(min_length=1, max_length=300)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    type: SessionType | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    language: Language | None = None
    action_lines: ActionLines | None = None
    sdgs: Sdgs | None = None
    track: Track | None = None
    tags: Tags | None = None
    capacity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    status: SessionStatus | None = None


class PersonBrief(BaseModel):
    id: int
    name: str
    organisation: str
    title: str


class SessionPublic(BaseModel):
    id: int
    forum_id: int
    code: str
    title: str
    description: str
    type: SessionType
    type_label: str
    starts_at: datetime
    ends_at: datetime
    language: str
    action_lines: list[str]
    sdgs: list[int]
    track: Track | None
    track_label: str | None
    tags: list[str]
    capacity: int | None
    status: SessionStatus
    moderators: list[PersonBrief] = []
    speakers: list[PersonBrief] = []
    registered: int = 0


class ProgrammeQuery(Request):
    forum: int | None = None
    day: date | None = None
    tz: TimeZone | None = None
    type: SessionType | None = None
    track: Track | None = None
    action_line: Annotated[str, Field(pattern=r"^[Cc](1[01]?|[2-9])$")] | None = None
    sdg: Annotated[int, Field(ge=1, le=17)] | None = None
    language: Language | None = None
    status: SessionStatus | None = None
    tag: Annotated[str, Field(max_length=50)] | None = None
    q: Annotated[str, Field(max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 500
    offset: Annotated[int, Field(ge=0)] = 0


class AttendanceBeacon(Request):
    """A page other than the live room reporting a visit: lite (captions and audio), recording, transcript."""

    channel: Literal["lite", "recording", "transcript"]
    event: Literal["join", "heartbeat", "leave"]
    visit_id: Annotated[int, Field(ge=1)] | None = None
    # Without an account: a random key the page keeps (counted in attendance, never in demographics).
    anonymous_key: Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] | None = None


class ReportQuery(Request):
    date_from: date | None = None
    date_to: date | None = None
    track: Track | None = None
    type: SessionType | None = None
    raw: bool = False  # organizers only: the figures before suppression

    def scope(self, forum_id: int) -> Scope:
        return Scope(
            forum_id,
            self.date_from,
            self.date_to,
            self.track.value if self.track else None,
            self.type.value if self.type else None,
        )


class TranscriptTrackQuery(Request):
    """Which caption track a transcript is read from (``?track=``): machine, translation or human."""

    track: CaptionTrack = CaptionTrack.MACHINE


class TranscriptQuery(Request):
    q: Annotated[str, Field(min_length=2, max_length=200)]
    forum: int | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class Programme(BaseModel):
    forum: ForumPublic | None
    total: int
    sessions: list[SessionPublic]


# People -------------------------------------------------------------------------------------------


class ProfileFields(Request):
    """Demographic fields, each stored only when its consent box is ticked."""

    organisation: ShortText = ""
    country: Country = None
    country_consent: bool = False
    gender: Gender | None = None
    gender_consent: bool = False
    stakeholder_type: StakeholderType | None = None
    stakeholder_consent: bool = False
    high_level: bool = False
    title: ShortText = ""

    @model_validator(mode="after")
    def _consents(self) -> ProfileFields:
        check_consents(self)
        return self


def check_consents(model: BaseModel) -> None:
    for value_field, consent_field in (
        ("country", "country_consent"),
        ("gender", "gender_consent"),
        ("stakeholder_type", "stakeholder_consent"),
    ):
        if getattr(model, value_field, None) is not None and getattr(model, consent_field, None) is False:
            raise ValueError(f"{value_field}: is only stored with consent: set {consent_field} or leave it empty")


class RegisterRequest(ProfileFields):
    email: Email
    password: Password
    name: Name


class SignInRequest(Request):
    email: Annotated[str, Field(max_length=254)]
    password: Annotated[str, Field(max_length=PASSWORD_MAX_CHARS)]


class ProfileUpdate(Request):
    """Changes to one's own profile; a consent set to false erases the value it guards."""

    name: Name | None = None
    organisation: ShortText | None = None
    country: Country = None
    country_consent: bool | None = None
    gender: Gender | None = None
    gender_consent: bool | None = None
    stakeholder_type: StakeholderType | None = None
    stakeholder_consent: bool | None = None
    high_level: bool | None = None
    title: ShortText | None = None

    @model_validator(mode="after")
    def _consents(self) -> ProfileUpdate:
        check_consents(self)
        return self


class ProfilePublic(BaseModel):
    id: int
    email: str
    name: str
    organisation: str
    country: str | None
    region: str | None
    gender: Gender | None
    stakeholder_type: StakeholderType | None
    country_consent: bool
    gender_consent: bool
    stakeholder_consent: bool
    high_level: bool
    title: str
    is_organizer: bool
    roles: list[dict[str, Any]] = []


class DeleteAccountRequest(Request):
    password: Annotated[str, Field(max_length=PASSWORD_MAX_CHARS)]


class InvitationCreate(Request):
    role: SessionRoleName
    expires_in_hours: Annotated[int, Field(ge=1, le=24 * 365)] | None = None


class InvitationPublic(BaseModel):
    url: str
    token: str
    session_id: int
    role: SessionRoleName
    expires_at: datetime


class ImportRowError(BaseModel):
    row: int
    code: str | None
    errors: list[dict[str, str]]


class ImportReport(BaseModel):
    mode: str
    format: str
    rows: int
    created: int
    updated: int
    written: bool
    rejected: list[ImportRowError]


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[dict[str, str]]


class ErrorResponse(BaseModel):
    error: ErrorBody
