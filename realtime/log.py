"""The per-room event log: ``(epoch, seq)`` stamps and a bounded replay window.

``seq`` grows by one per event in a room; ``epoch`` is new whenever the room's history is lost (a
restart rebuilds the state from the database under a new epoch). A client resuming with an
``(epoch, last_seq)`` the log still covers gets exactly the events after ``last_seq``; otherwise it
gets a fresh snapshot.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Events kept for resume; at 5 events/s this covers over half an hour of a busy room.
REPLAY_WINDOW_EVENTS = 10_000


def new_epoch() -> str:
    return secrets.token_hex(8)


@dataclass
class Event:
    """Something that happened in a room.

    Args:
        kind: what happened (``chat.posted``, ``question.changed``, ...).
        data: JSON-ready details; views decide what each viewer may see of them.
        related: people who see more of it than the public (an author, a voter, a muted person).
        durable: the server commits it to the database before it is broadcast.
    """

    kind: str
    data: dict[str, Any]
    related: frozenset[int] = frozenset()
    durable: bool = True
    seq: int = 0
    rendered: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)


class EventLog:
    """Stamps events with consecutive sequence numbers and keeps the newest for replay."""

    def __init__(self, epoch: str | None = None, window: int = REPLAY_WINDOW_EVENTS) -> None:
        self.epoch = epoch or new_epoch()
        self.seq = 0
        self._events: deque[Event] = deque(maxlen=window)

    def append(self, event: Event) -> Event:
        self.seq += 1
        event.seq = self.seq
        self._events.append(event)
        return event

    def since(self, epoch: str, last_seq: int) -> list[Event] | None:
        """Events after ``last_seq``, or ``None`` when they are no longer all kept (or never were)."""
        if epoch != self.epoch or last_seq > self.seq or last_seq < 0:
            return None
        if last_seq == self.seq:
            return []
        oldest = self._events[0].seq if self._events else self.seq + 1
        if last_seq + 1 < oldest:
            return None
        start = last_seq + 1 - oldest
        return [self._events[i] for i in range(start, len(self._events))]
