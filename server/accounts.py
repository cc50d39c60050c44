"""People and their accounts: registration, sign-in, profiles with consented demographics,
organizers, invitation links, and a person's own data (export and deletion).

Functions take a database session and values and return values; the HTTP layer calls them in a
worker thread through ``Database.read``/``write``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session as DbSession
from sqlmodel import select

from server import geo
from server.errors import Conflict, FieldError, Forbidden, Gone, InvalidInput, NotFound, NotSignedIn
from server.i18n import N_
from server.schemas import ProfilePublic, ProfileUpdate, RegisterRequest, parse
from server.storage.models import Invitation, Person, Registration, Session, SessionRole
from server.storage.types import utcnow

# Argon2id (memory-hard) with argon2-cffi's defaults: 64 MiB, 3 passes, 4 lanes.
PASSWORDS = PasswordHasher()
# Verified against when the email is unknown, so that a wrong email costs as long as a wrong password.
_DUMMY_HASH = PASSWORDS.hash(secrets.token_urlsafe(16))
INVITATION_TOKEN_BYTES = 32


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


def register(db: DbSession, data: RegisterRequest, *, organizer: bool = False) -> Person:
    """Create an account.

    Raises:
        Conflict: the email is already registered.
    """
    if db.exec(select(Person).where(Person.email == data.email)).first() is not None:
        raise Conflict("email: already registered", [FieldError("email", N_("already registered"))])
    person = Person(
        email=data.email, password_hash=hash_password(data.password), name=data.name, is_organizer=organizer
    )
    _apply_profile(person, data.model_dump(exclude={"email", "password"}), utcnow())
    db.add(person)
    db.flush()
    return person


def _apply_profile(person: Person, changes: dict[str, Any], now: datetime) -> None:
    """Apply profile changes; demographic values are kept only while their consent stands."""
    for name in ("name", "organisation", "high_level", "title"):
        if changes.get(name) is not None:
            setattr(person, name, changes[name])
    for value_field, consent_field, consent_at in (
        ("country", "country_consent", "country_consent_at"),
        ("gender", "gender_consent", "gender_consent_at"),
        ("stakeholder_type", "stakeholder_consent", "stakeholder_consent_at"),
    ):
        consent = changes.get(consent_field)
        if consent is False:
            setattr(person, value_field, None)
            setattr(person, consent_at, None)
        elif consent is True and getattr(person, consent_at) is None:
            setattr(person, consent_at, now)
        if value_field not in changes:
            continue
        if changes[value_field] is None:
            setattr(person, value_field, None)  # "not stated"
        elif getattr(person, consent_at) is None:
            raise InvalidInput.field(value_field, f"is only stored with consent: set {consent_field}")
        else:
            setattr(person, value_field, str(changes[value_field]))
    region = geo.region_for(person.country)
    person.region = region.value if region else None


def authenticate(db: DbSession, email: str, password: str) -> Person:
    """Return the person whose email and password match.

    Raises:
        NotSignedIn: wrong email or password (which of the two is not said).
    """
    person = db.exec(select(Person).where(Person.email == email.strip().lower())).first()
    try:
        PASSWORDS.verify(person.password_hash if person else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        person = None
    if person is None:
        raise NotSignedIn(N_("wrong email or password"))
    if PASSWORDS.check_needs_rehash(person.password_hash):
        person.password_hash = hash_password(password)
        db.add(person)
    return person


def get_person(db: DbSession, person_id: int) -> Person:
    person = db.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    return person


def update_profile(db: DbSession, person_id: int, data: ProfileUpdate) -> Person:
    person = get_person(db, person_id)
    _apply_profile(person, data.model_dump(exclude_unset=True), utcnow())
    db.add(person)
    db.flush()
    return person


def profile(db: DbSession, person: Person) -> ProfilePublic:
    roles = db.exec(
        select(SessionRole, Session)
        .join(Session, Session.id == SessionRole.session_id)
        .where(SessionRole.person_id == person.id)
    ).all()
    return ProfilePublic(
        id=person.id or 0,
        email=person.email,
        name=person.name,
        organisation=person.organisation,
        country=person.country,
        region=person.region,
        gender=person.gender,  # type: ignore[arg-type]
        stakeholder_type=person.stakeholder_type,  # type: ignore[arg-type]
        country_consent=person.country_consent_at is not None,
        gender_consent=person.gender_consent_at is not None,
        stakeholder_consent=person.stakeholder_consent_at is not None,
        high_level=person.high_level,
        title=person.title,
        is_organizer=person.is_organizer,
        roles=[{"session_id": s.id, "session_title": s.title, "role": r.role} for r, s in roles],
    )


# Caption display settings a person can keep (web/static/captionprefs.js applies them; the first is the default).
CAPTION_DISPLAY: dict[str, tuple[str, ...]] = {
    "size": ("normal", "large", "larger"),
    "contrast": ("dark", "light", "yellow"),
    "position": ("page", "bottom", "top"),
}


def caption_display(person: Person) -> dict[str, str]:
    """The person's saved caption display settings (only known names and values; {} when never set)."""
    try:
        saved = json.loads(person.caption_display or "{}")
    except ValueError:
        return {}
    if not isinstance(saved, dict):
        return {}
    return {k: v for k, v in saved.items() if k in CAPTION_DISPLAY and v in CAPTION_DISPLAY[k]}


def set_caption_display(db: DbSession, person_id: int, values: object) -> dict[str, str]:
    """Keep caption display settings in the profile; settings not given keep their saved value.

    Raises:
        InvalidInput: not an object, or an unknown setting or value.
    """
    if not isinstance(values, dict):
        raise InvalidInput.field("body", "must be a JSON object")
    for name, value in values.items():
        if name not in CAPTION_DISPLAY:
            raise InvalidInput.field(str(name), "is not a caption display setting")
        if value not in CAPTION_DISPLAY[name]:
            raise InvalidInput.field(name, f"must be one of {', '.join(CAPTION_DISPLAY[name])}")
    person = get_person(db, person_id)
    merged = {**caption_display(person), **values}
    person.caption_display = json.dumps(merged, separators=(",", ":"), sort_keys=True)
    db.add(person)
    return merged


def export_data(db: DbSession, person_id: int) -> dict[str, Any]:
    """Everything stored about a person, as JSON-ready values."""
    person = get_person(db, person_id)
    data = person.model_dump(mode="json", exclude={"password_hash"})
    registrations = db.exec(select(Registration).where(Registration.person_id == person_id)).all()
    roles = db.exec(select(SessionRole).where(SessionRole.person_id == person_id)).all()
    invitations = db.exec(select(Invitation).where(Invitation.accepted_by == person_id)).all()
    return {
        "format": "forumlive-personal-data/1",
        "exported_at": utcnow().isoformat(),
        "person": data,
        "registrations": [r.model_dump(mode="json") for r in registrations],
        "session_roles": [r.model_dump(mode="json") for r in roles],
        "accepted_invitations": [i.model_dump(mode="json", exclude={"token_hash"}) for i in invitations],
    }


def delete_account(db: DbSession, person_id: int, password: str) -> None:
    """Delete a person and everything that belongs to them (password re-checked first).

    Raises:
        NotSignedIn: the password is wrong.
    """
    person = get_person(db, person_id)
    try:
        PASSWORDS.verify(person.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise NotSignedIn(N_("wrong password; the account was not deleted")) from None
    for model in (Registration, SessionRole):
        for row in db.exec(select(model).where(model.person_id == person_id)).all():
            db.delete(row)
    for invitation in db.exec(
        select(Invitation).where((Invitation.accepted_by == person_id) | (Invitation.created_by == person_id))
    ).all():
        if invitation.accepted_by == person_id:
            invitation.accepted_by = None
        if invitation.created_by == person_id:
            invitation.created_by = None
        db.add(invitation)
    db.delete(person)
    db.flush()


def create_organizer(db: DbSession, email: str, name: str, password: str) -> tuple[Person, bool]:
    """Make an organizer: a new account, or promote an existing one. Returns (person, created)."""
    existing = db.exec(select(Person).where(Person.email == email.strip().lower())).first()
    if existing is not None:
        existing.is_organizer = True
        db.add(existing)
        return existing, False
    data = parse(RegisterRequest, {"email": email, "password": password, "name": name})
    return register(db, data, organizer=True), True


# Invitations --------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def require_organizer(person: Person | None) -> Person:
    if person is None:
        raise NotSignedIn(N_("sign in first"))
    if not person.is_organizer:
        raise Forbidden(N_("only organizers may do this"))
    return person


def create_invitation(
    db: DbSession, actor: Person | None, session_id: int, role: str, ttl: timedelta
) -> tuple[str, Invitation]:
    """Create an invitation link for a session role; returns the secret token and the record.

    Raises:
        Forbidden: the actor is not an organizer.
        NotFound: no such session.
    """
    actor = require_organizer(actor)
    if db.get(Session, session_id) is None:
        raise NotFound(f"no session with id {session_id}")
    token = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
    invitation = Invitation(
        token_hash=_token_hash(token),
        session_id=session_id,
        role=role,
        created_by=actor.id,
        expires_at=utcnow() + ttl,
    )
    db.add(invitation)
    db.flush()
    return token, invitation


def find_invitation(db: DbSession, token: str) -> tuple[Invitation, Session]:
    """The invitation and its session, while it can still be accepted.

    Raises:
        NotFound: no invitation has this token.
        Gone: it expired.
        Conflict: it was already accepted.
    """
    invitation = db.exec(select(Invitation).where(Invitation.token_hash == _token_hash(token))).first()
    if invitation is None:
        raise NotFound(N_("this invitation link is not valid"))
    if invitation.accepted_at is not None:
        raise Conflict(N_("this invitation link has already been used"))
    if invitation.expires_at <= utcnow():
        raise Gone(f"this invitation link expired at {invitation.expires_at.isoformat()}; ask for a new one")
    session = db.get(Session, invitation.session_id)
    assert session is not None  # the foreign key cascades deletes
    return invitation, session


def accept_invitation(db: DbSession, person: Person | None, token: str) -> SessionRole:
    """Give the signed-in person the invitation's role in its session, once."""
    if person is None:
        raise NotSignedIn(N_("sign in or register to accept the invitation"))
    invitation, session = find_invitation(db, token)
    invitation.accepted_by = person.id
    invitation.accepted_at = utcnow()
    db.add(invitation)
    role = db.exec(
        select(SessionRole).where(
            SessionRole.session_id == session.id,
            SessionRole.person_id == person.id,
            SessionRole.role == invitation.role,
        )
    ).first()
    if role is None:
        role = SessionRole(session_id=session.id or 0, person_id=person.id or 0, role=invitation.role)
        db.add(role)
        db.flush()
    return role
