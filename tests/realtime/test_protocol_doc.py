"""docs/protocol.md shows a valid example of every message type and event kind."""

from __future__ import annotations

import json
import re
from pathlib import Path

from realtime import cafe_room, protocol
from realtime.views import ALWAYS_PUBLIC

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EVENT_KINDS = ALWAYS_PUBLIC | cafe_room.EVENT_KINDS | {
    "presence.changed",
    "chat.muted",
    "moderation.logged",
    "question.asked",
    "question.changed",
    "question.voted",
    "poll.changed",
    "poll.voted",
}
SERVER_TYPES = protocol.SERVER_TYPES


def _blocks(tag: str) -> list[dict]:
    return [json.loads(body) for body in re.findall(rf"```json {tag}\n(.*?)\n```", DOC.read_text(), re.S)]


def test_every_client_example_parses_and_every_type_has_one() -> None:
    """Each client example is accepted by the real parser; together they cover every message type."""
    seen = {protocol.parse_client(json.dumps(example)).type for example in _blocks("client")}
    assert seen == set(protocol.MESSAGE_TYPES)


def test_every_event_kind_and_server_message_is_shown() -> None:
    """Each event kind and each server message type has an example."""
    assert {e["kind"] for e in _blocks("event")} == EVENT_KINDS
    assert {m["type"] for m in _blocks("server")} == SERVER_TYPES


def test_documented_event_kinds_are_the_rooms_event_kinds() -> None:
    """The room applies exactly the documented kinds (no undocumented event can be emitted)."""
    from realtime.room import Room

    applied = {name.removeprefix("_apply_").replace("_", ".", 1) for name in dir(Room) if name.startswith("_apply_")}
    assert applied | cafe_room.EVENT_KINDS == EVENT_KINDS  # café events are applied by realtime/cafe_room.py
