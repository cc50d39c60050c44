"""iCalendar (RFC 5545) export of one session or of a personal agenda."""

from __future__ import annotations

from collections.abc import Iterable

from icalendar import Calendar, Event

from server.schemas import SessionPublic
from server.storage.types import utcnow

PRODID = "-//forumlive//programme//EN"


def to_ics(sessions: Iterable[SessionPublic], base_url: str, name: str) -> bytes:
    """A calendar with one event per session, linking back to the session page."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    stamp = utcnow()
    host = base_url.split("//", 1)[-1].split("/", 1)[0]
    for session in sessions:
        event = Event()
        event.add("uid", f"session-{session.id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", session.starts_at)
        event.add("dtend", session.ends_at)
        event.add("summary", session.title)
        url = f"{base_url}/sessions/{session.id}"
        event.add("url", url)
        event.add("description", f"{session.type_label}. {session.description}\n\n{url}".strip())
        event.add("categories", [session.type_label, *session.action_lines, *session.tags])
        event.add("status", "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()
