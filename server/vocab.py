"""The forum's own vocabulary: session formats, statuses, WSIS Action Lines, SDGs, special tracks,
stakeholder types, genders and roles.

Each is a ``StrEnum`` whose value is the stable code stored in the database and used in the API;
``LABELS`` give the words people read.
"""

from __future__ import annotations

from enum import StrEnum


class SessionType(StrEnum):
    HIGH_LEVEL_POLICY = "high_level_policy_session"
    THEMATIC_WORKSHOP = "thematic_workshop"
    COUNTRY_WORKSHOP = "country_workshop"
    TALKX = "talkx"
    KNOWLEDGE_CAFE = "knowledge_cafe"
    HACKATHON = "hackathon"
    ACTION_LINE_FACILITATION = "action_line_facilitation"
    INTERACTIVE = "interactive_session"
    PRIZE_CEREMONY = "prize_ceremony"
    OPENING_CLOSING = "opening_closing"
    MINISTERIAL_ROUND_TABLE = "ministerial_round_table"
    EXHIBITION = "exhibition"


SESSION_TYPE_LABELS: dict[SessionType, str] = {
    SessionType.HIGH_LEVEL_POLICY: "High-level policy session",
    SessionType.THEMATIC_WORKSHOP: "Thematic workshop",
    SessionType.COUNTRY_WORKSHOP: "Country workshop",
    SessionType.TALKX: "TalkX",
    SessionType.KNOWLEDGE_CAFE: "Knowledge café",
    SessionType.HACKATHON: "Hackathon",
    SessionType.ACTION_LINE_FACILITATION: "Action Line facilitation meeting",
    SessionType.INTERACTIVE: "Interactive session",
    SessionType.PRIZE_CEREMONY: "Prize ceremony",
    SessionType.OPENING_CLOSING: "Opening / closing",
    SessionType.MINISTERIAL_ROUND_TABLE: "Ministerial round table",
    SessionType.EXHIBITION: "Exhibition",
}


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class Track(StrEnum):
    OLDER_PERSONS = "older_persons"
    YOUTH = "youth"
    ACCESSIBILITY = "accessibility"
    GENDER_MAINSTREAMING = "gender_mainstreaming"
    SPORTS = "sports"


TRACK_LABELS: dict[Track, str] = {
    Track.OLDER_PERSONS: "ICTs and Older Persons",
    Track.YOUTH: "Youth",
    Track.ACCESSIBILITY: "Accessibility",
    Track.GENDER_MAINSTREAMING: "Gender Mainstreaming",
    Track.SPORTS: "ICTs and Sports",
}

ACTION_LINES: dict[str, str] = {
    "C1": "The role of public governance authorities and all stakeholders in the promotion of ICTs for development",
    "C2": "Information and communication infrastructure",
    "C3": "Access to information and knowledge",
    "C4": "Capacity building",
    "C5": "Building confidence and security in the use of ICTs",
    "C6": "Enabling environment",
    "C7": "ICT applications (e-government, e-business, e-learning, e-health, e-employment, e-environment, "
    "e-agriculture, e-science)",
    "C8": "Cultural diversity and identity, linguistic diversity and local content",
    "C9": "Media",
    "C10": "Ethical dimensions of the Information Society",
    "C11": "International and regional cooperation",
}

SDGS: dict[int, str] = {
    1: "No poverty",
    2: "Zero hunger",
    3: "Good health and well-being",
    4: "Quality education",
    5: "Gender equality",
    6: "Clean water and sanitation",
    7: "Affordable and clean energy",
    8: "Decent work and economic growth",
    9: "Industry, innovation and infrastructure",
    10: "Reduced inequalities",
    11: "Sustainable cities and communities",
    12: "Responsible consumption and production",
    13: "Climate action",
    14: "Life below water",
    15: "Life on land",
    16: "Peace, justice and strong institutions",
    17: "Partnerships for the goals",
}


class StakeholderType(StrEnum):
    GOVERNMENT = "government"
    PRIVATE_SECTOR = "private_sector"
    CIVIL_SOCIETY = "civil_society"
    ACADEMIA = "academia"
    TECHNICAL_COMMUNITY = "technical_community"
    INTERNATIONAL_ORGANIZATION = "international_organization"
    OTHER = "other"


STAKEHOLDER_LABELS: dict[StakeholderType, str] = {
    StakeholderType.GOVERNMENT: "Government",
    StakeholderType.PRIVATE_SECTOR: "Private sector",
    StakeholderType.CIVIL_SOCIETY: "Civil society",
    StakeholderType.ACADEMIA: "Academia",
    StakeholderType.TECHNICAL_COMMUNITY: "Technical community",
    StakeholderType.INTERNATIONAL_ORGANIZATION: "International organization",
    StakeholderType.OTHER: "Other",
}


class Gender(StrEnum):
    WOMAN = "woman"
    MAN = "man"
    NON_BINARY = "non_binary"
    ANOTHER = "another"


GENDER_LABELS: dict[Gender, str] = {
    Gender.WOMAN: "Woman",
    Gender.MAN: "Man",
    Gender.NON_BINARY: "Non-binary",
    Gender.ANOTHER: "Another gender",
}


class SessionRoleName(StrEnum):
    """Roles held in one session; ``organizer`` is forum-wide and lives on the person."""

    MODERATOR = "moderator"
    SPEAKER = "speaker"
    CAPTIONER = "captioner"  # types the human caption track
