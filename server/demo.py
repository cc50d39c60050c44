"""A demo forum modelled on the WSIS Forum's virtual edition: several days of sessions in every
format and special track, a few live now, and demo accounts with varied countries and stakeholder types.

Demo passwords are random per data directory and kept in ``demo-accounts.json`` beside the database.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session as DbSession
from sqlmodel import select

from server import accounts
from server.programme import write_session
from server.reports.synthetic import generate
from server.schemas import RegisterRequest, SessionFields
from server.storage.models import Forum, Person, Registration, SessionRole
from server.vocab import SESSION_TYPE_LABELS, SessionStatus, SessionType, Track

DEMO_ZONE = "Europe/Zurich"
ACCOUNTS_FILE = "demo-accounts.json"
DAY_SLOTS = (time(9, 0), time(11, 0), time(13, 0), time(15, 0), time(17, 0))


@dataclass(frozen=True)
class DemoAccount:
    role: str
    name: str
    email: str
    password: str


T = SessionType
# (title, type, track, action lines, SDGs, tags, language)
PROGRAMME: list[tuple[str, SessionType, Track | None, str, str, str, str]] = [
    ("Opening of the forum", T.OPENING_CLOSING, None, "C1 C11", "17", "", "en"),
    ("High-level policy session: Bridging the digital divide", T.HIGH_LEVEL_POLICY, None, "C2 C3", "9 10", "", "en"),
    ("High-level policy session: Building confidence and security", T.HIGH_LEVEL_POLICY, None, "C5", "16", "", "fr"),
    (
        "High-level policy session: Enabling environment for digital inclusion",
        T.HIGH_LEVEL_POLICY,
        None,
        "C6",
        "8 9",
        "",
        "es",
    ),
    (
        "High-level policy session: ICTs for older persons",
        T.HIGH_LEVEL_POLICY,
        Track.OLDER_PERSONS,
        "C1 C7",
        "3 10",
        "",
        "en",
    ),
    (
        "Ministerial round table: Digital resilience after the pandemic",
        T.MINISTERIAL_ROUND_TABLE,
        None,
        "C1 C11",
        "3 17",
        "covid-19",
        "en",
    ),
    (
        "Ministerial round table: Connectivity for the last billion",
        T.MINISTERIAL_ROUND_TABLE,
        None,
        "C2 C6",
        "9",
        "",
        "ar",
    ),
    (
        "Thematic workshop: E-health lessons from COVID-19",
        T.THEMATIC_WORKSHOP,
        None,
        "C7",
        "3",
        "covid-19 e-health",
        "en",
    ),
    (
        "Thematic workshop: Digital skills for youth employment",
        T.THEMATIC_WORKSHOP,
        Track.YOUTH,
        "C4 C7",
        "4 8",
        "skills",
        "en",
    ),
    (
        "Thematic workshop: Accessible digital services by design",
        T.THEMATIC_WORKSHOP,
        Track.ACCESSIBILITY,
        "C3 C7",
        "10",
        "accessibility",
        "en",
    ),
    (
        "Thematic workshop: Women in technology leadership",
        T.THEMATIC_WORKSHOP,
        Track.GENDER_MAINSTREAMING,
        "C4",
        "5",
        "",
        "en",
    ),
    ("Thematic workshop: Multilingual content online", T.THEMATIC_WORKSHOP, None, "C8", "4 10", "languages", "fr"),
    ("Thematic workshop: Media and information literacy", T.THEMATIC_WORKSHOP, None, "C9 C10", "16", "", "en"),
    ("Thematic workshop: Ethics of artificial intelligence", T.THEMATIC_WORKSHOP, None, "C10", "9 16", "ai", "en"),
    (
        "Thematic workshop: E-agriculture and food systems",
        T.THEMATIC_WORKSHOP,
        None,
        "C7",
        "2 12",
        "e-agriculture",
        "es",
    ),
    ("Thematic workshop: Climate data for resilient cities", T.THEMATIC_WORKSHOP, None, "C7", "11 13", "climate", "en"),
    ("Thematic workshop: Esports and inclusion", T.THEMATIC_WORKSHOP, Track.SPORTS, "C7 C8", "3 10", "sports", "en"),
    ("Country workshop: Rwanda's smart villages", T.COUNTRY_WORKSHOP, None, "C2 C7", "1 9", "", "en"),
    ("Country workshop: Digital identity in Estonia", T.COUNTRY_WORKSHOP, None, "C5 C7", "16", "", "en"),
    ("Country workshop: Saudi Arabia's digital government journey", T.COUNTRY_WORKSHOP, None, "C1 C7", "16", "", "ar"),
    ("Country workshop: Connecting rural Bolivia", T.COUNTRY_WORKSHOP, None, "C2", "9 10", "", "es"),
    ("Country workshop: China's online education at scale", T.COUNTRY_WORKSHOP, None, "C4 C7", "4", "covid-19", "zh"),
    ("Country workshop: Russian Federation on e-science platforms", T.COUNTRY_WORKSHOP, None, "C7", "9", "", "ru"),
    ("TalkX: Gender-responsive ICT policy", T.TALKX, Track.GENDER_MAINSTREAMING, "C1", "5", "", "en"),
    ("TalkX: Youth voices on the future of the Internet", T.TALKX, Track.YOUTH, "C10", "4 16", "", "en"),
    ("TalkX: Assistive technology in everyday life", T.TALKX, Track.ACCESSIBILITY, "C3", "3 10", "accessibility", "en"),
    ("TalkX: Ageing well with digital services", T.TALKX, Track.OLDER_PERSONS, "C7", "3", "", "en"),
    ("Knowledge café: Connectivity and community networks", T.KNOWLEDGE_CAFE, None, "C2 C11", "9 17", "", "en"),
    ("Knowledge café: Digital health after the pandemic", T.KNOWLEDGE_CAFE, None, "C7", "3", "covid-19", "en"),
    ("Knowledge café: Youth and the SDGs", T.KNOWLEDGE_CAFE, Track.YOUTH, "C4", "4 17", "", "fr"),
    ("Hackathon: Open data for disaster response", T.HACKATHON, Track.YOUTH, "C7", "11 13", "open-data", "en"),
    ("Hackathon: Apps for healthy ageing", T.HACKATHON, Track.OLDER_PERSONS, "C7", "3", "", "en"),
    ("Action Line C4 facilitation meeting: Capacity building", T.ACTION_LINE_FACILITATION, None, "C4", "4", "", "en"),
    ("Action Line C5 facilitation meeting: Cybersecurity", T.ACTION_LINE_FACILITATION, None, "C5", "16", "", "en"),
    (
        "Action Line C7 e-environment facilitation meeting",
        T.ACTION_LINE_FACILITATION,
        None,
        "C7",
        "13",
        "e-waste",
        "en",
    ),
    ("Action Line C9 facilitation meeting: Media", T.ACTION_LINE_FACILITATION, None, "C9", "16", "", "fr"),
    ("Interactive session: Measuring the information society", T.INTERACTIVE, None, "C11", "17", "statistics", "en"),
    (
        "Interactive session: Sport for development in the digital age",
        T.INTERACTIVE,
        Track.SPORTS,
        "C7",
        "3 5",
        "sports",
        "es",
    ),
    (
        "Interactive session: Disability-inclusive emergency communications",
        T.INTERACTIVE,
        Track.ACCESSIBILITY,
        "C5 C7",
        "11",
        "",
        "en",
    ),
    ("Interactive session: Girls in ICT", T.INTERACTIVE, Track.GENDER_MAINSTREAMING, "C4", "5", "", "en"),
    ("Exhibition: Champions' showcase", T.EXHIBITION, None, "C3 C7", "9", "", "en"),
    ("Exhibition: Innovations for accessibility", T.EXHIBITION, Track.ACCESSIBILITY, "C3", "10", "", "en"),
    ("WSIS Prizes ceremony", T.PRIZE_CEREMONY, None, "C1 C2 C3 C4 C5 C6 C7 C8 C9 C10 C11", "17", "", "en"),
    ("Closing of the forum", T.OPENING_CLOSING, None, "C11", "17", "", "en"),
]

# Placed around "now" so that the demo always has live sessions.
LIVE_NOW = (
    "High-level policy session: Bridging the digital divide",
    "Knowledge café: Connectivity and community networks",
    "TalkX: Youth voices on the future of the Internet",
)

PEOPLE = [
    (
        "organizer",
        "Amina Diallo",
        "organizer@demo.forumlive.org",
        "SN",
        "woman",
        "international_organization",
        False,
        "",
    ),
    ("moderator", "Lucas Moreau", "moderator@demo.forumlive.org", "FR", "man", "civil_society", False, ""),
    (
        "speaker",
        "Hana Al-Sayed",
        "speaker@demo.forumlive.org",
        "JO",
        "woman",
        "government",
        True,
        "Minister of Digital Economy",
    ),
    ("participant", "Kenji Watanabe", "participant@demo.forumlive.org", "JP", "man", "academia", False, ""),
    ("participant", "Ana Lima", "ana@demo.forumlive.org", "BR", None, "private_sector", False, ""),
    ("participant", "Olena Kovalenko", "olena@demo.forumlive.org", "UA", "woman", "technical_community", False, ""),
    ("participant", "Daniyar Seitkali", "daniyar@demo.forumlive.org", "KZ", "man", None, False, ""),
]


def _status(start: datetime, end: datetime, now: datetime) -> SessionStatus:
    if end <= now:
        return SessionStatus.ENDED
    if start <= now:
        return SessionStatus.LIVE
    return SessionStatus.SCHEDULED


def _schedule(now: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Slots from yesterday on, in the forum's zone; the live sessions are moved around ``now``."""
    first_day = now.astimezone(zone).date() - timedelta(days=1)
    slots = []
    day = 0
    while len(slots) < len(PROGRAMME):
        for slot in DAY_SLOTS:
            start = datetime.combine(first_day + timedelta(days=day), slot, tzinfo=zone)
            slots.append((start, start + timedelta(minutes=90)))
        day += 1
    return slots[: len(PROGRAMME)]


def seed_demo(db: DbSession, now: datetime) -> list[DemoAccount]:
    """Create the demo forum, its programme and accounts in an empty database."""
    zone = ZoneInfo(DEMO_ZONE)
    slots = _schedule(now, zone)
    forum = Forum(
        slug="wsis-demo",
        name="WSIS Forum — virtual demo edition",
        theme="ICTs for well-being, inclusion and resilience: WSIS cooperation for accelerating progress on the SDGs",
        start_date=slots[0][0].date(),
        end_date=max(slots[-1][1].date(), (now + timedelta(days=1)).astimezone(zone).date()),
        timezone=DEMO_ZONE,
    )
    db.add(forum)
    db.flush()
    sessions = {}
    for index, (title, kind, track, als, sdgs, tags, language) in enumerate(PROGRAMME):
        start, end = slots[index]
        if title in LIVE_NOW:
            offset = LIVE_NOW.index(title) * 10
            start = now - timedelta(minutes=30 + offset)
            end = now + timedelta(minutes=60 + offset)
        fields = SessionFields(
            title=title,
            description=f"{SESSION_TYPE_LABELS[kind]} of the demo forum. "
            "Speakers share experience and take questions from the audience.\n\n"
            "Live captions are available in every session.",
            type=kind,
            starts_at=start,
            ends_at=end,
            language=language,
            action_lines=als.split(),
            sdgs=[int(n) for n in sdgs.split()],
            track=track,
            tags=tags.split(),
            capacity=500 if kind in (T.KNOWLEDGE_CAFE, T.HACKATHON) else None,
            status=_status(start, end, now),
        )
        session, _ = write_session(db, forum.id or 0, f"D{index + 1:03d}", fields)
        sessions[title] = session
    return _seed_people(db, list(sessions.values()))


def _seed_people(db: DbSession, sessions: list) -> list[DemoAccount]:  # type: ignore[type-arg]
    made = []
    persons: dict[str, Person] = {}
    for role, name, email, country, gender, stakeholder, high_level, title in PEOPLE:
        password = secrets.token_urlsafe(9)
        data = RegisterRequest(
            email=email,
            password=password,
            name=name,
            organisation="Demo organisation",
            country=country,
            country_consent=True,
            gender=gender,
            gender_consent=gender is not None,
            stakeholder_type=stakeholder,
            stakeholder_consent=stakeholder is not None,
            high_level=high_level,
            title=title,
        )
        person = accounts.register(db, data, organizer=role == "organizer")
        persons.setdefault(role, person)
        made.append(DemoAccount(role, name, email, password))
    for index, session in enumerate(sessions):
        if index % 2 == 0:
            db.add(SessionRole(session_id=session.id, person_id=persons["moderator"].id, role="moderator"))
        if index % 3 == 0:
            db.add(SessionRole(session_id=session.id, person_id=persons["speaker"].id, role="speaker"))
        if index % 4 == 1:
            db.add(Registration(person_id=persons["participant"].id, session_id=session.id))
    db.flush()
    # A past edition with synthetic attendance, so that the key-figures report has something to show.
    generate(db, sessions=250, visits=20_000, countries=185, seed=2020, start=date(2020, 6, 22))
    return made


def ensure_demo(db: DbSession, data_dir: Path, now: datetime) -> tuple[list[DemoAccount], bool]:
    """Seed the demo once per data directory; returns the accounts and whether it seeded now."""
    path = data_dir / ACCOUNTS_FILE
    if db.exec(select(Forum)).first() is not None and path.is_file():
        return [DemoAccount(**item) for item in json.loads(path.read_text())], False
    if db.exec(select(Forum)).first() is not None:
        return [], False
    made = seed_demo(db, now)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump([asdict(a) for a in made], handle, indent=2)
    return made, True
