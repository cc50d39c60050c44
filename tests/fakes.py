"""Fakes at seams, and only there. Each faked seam also has a test against the real thing."""

from __future__ import annotations

import itertools

from realtime.log import Event


class MemoryIds:
    """Stands in for the database at the room's persistence seam: gives new chat messages, questions
    and polls their ids, as the real store (``server.rooms``) does with its inserts."""

    def __init__(self) -> None:
        # One sequence per table, as in the database.
        self._chat, self._questions, self._polls = itertools.count(1), itertools.count(1), itertools.count(1)

    def commit(self, events: list[Event]) -> list[Event]:
        for event in events:
            if event.kind == "chat.posted" and not event.data["id"]:
                event.data["id"] = next(self._chat)
            elif event.kind == "question.asked" and not event.data["question"]["id"]:
                event.data["question"]["id"] = next(self._questions)
            elif event.kind == "poll.changed" and not event.data["poll"]["id"]:
                event.data["poll"]["id"] = next(self._polls)
        return events
