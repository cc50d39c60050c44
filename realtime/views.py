"""What each viewer may see: snapshots of a room and the rendering of each event.

Three kinds of viewer: staff (organizers and moderators) see everything; the people an event is
``related`` to (an author, a voter, a muted person) see their own part; the public sees the rest.
Pending questions reach only staff and their author; anonymous questions hide their author from
the public, never from staff; poll counts stay hidden until the poll closes when asked to.
Every viewer receives every sequence number: an event they may not see arrives as ``skip``.
"""

from __future__ import annotations

from typing import Any

from realtime import cafe_room, protocol
from realtime.log import Event
from realtime.room import LISTED_ROLES, PUBLIC_QUESTION, Actor, Poll, PollState, Question, QuestionStatus, Room

ALWAYS_PUBLIC = frozenset(
    {
        "room.state",
        "room.locked",
        "participant.removed",
        "hand.raised",
        "hand.lowered",
        "stage.joined",
        "stage.left",
        "chat.posted",
        "chat.deleted",
        "chat.slow_mode",
        "qa.settings",
        "caption.final",
        "caption.partial",
        "media.muted",
    }
)


# Participants see the staff and speakers by name (LISTED_ROLES) and everyone else as a count: a plenary's
# audience of thousands would otherwise cost every newcomer a roster of thousands. Staff see everyone.


def viewer_class(event: Event, viewer: Actor) -> str:
    if viewer.is_staff:
        return "staff"
    return "related" if viewer.person_id in event.related else "public"


def _question_view(q: dict[str, Any], cls: str) -> dict[str, Any] | None:
    status = QuestionStatus(q["status"])
    if cls == "staff":
        return q
    if status not in PUBLIC_QUESTION and cls != "related":
        return None
    if q["anonymous"] and cls != "related":
        return {**q, "person_id": None, "name": "Anonymous"}
    return q


def _poll_view(poll: dict[str, Any], cls: str) -> dict[str, Any] | None:
    if cls == "staff":
        return poll
    if poll["state"] == PollState.DRAFT.value:
        return None
    if poll["results"] == "on_close" and poll["state"] != PollState.CLOSED.value:
        return {**poll, "counts": None}
    return poll


def event_data(event: Event, cls: str, polls: dict[int, Poll]) -> dict[str, Any] | None:
    """What a viewer of class ``cls`` sees of an event (``None``: nothing)."""
    kind, data = event.kind, event.data
    if kind in ALWAYS_PUBLIC or kind in cafe_room.EVENT_KINDS:
        return data
    if kind == "presence.changed":
        if cls == "staff":
            return data
        return {
            "joined": [p for p in data["joined"] if p["role"] in LISTED_ROLES],
            "left": [p for p in data["left"] if p["role"] in LISTED_ROLES],
            "count": data["count"],
        }
    if kind in {"chat.muted"}:
        return data if cls in {"staff", "related"} else None
    if kind == "moderation.logged":
        return data if cls == "staff" else None
    if kind in {"question.asked", "question.changed"}:
        view = _question_view(data["question"], cls)
        if view is None and data.get("was") in {s.value for s in PUBLIC_QUESTION}:
            return {"question": {"id": data["question"]["id"], "status": data["question"]["status"]}}
        return None if view is None else {"question": view}
    if kind == "question.voted":
        public = {"id": data["id"], "votes": data["votes"]}
        return data if cls in {"staff", "related"} else public
    if kind == "poll.changed":
        view = _poll_view(data["poll"], cls)
        return None if view is None else {"poll": view}
    if kind == "poll.voted":
        if cls == "staff":
            return data
        poll = polls.get(data["id"])
        hidden = poll is not None and poll.results == "on_close"
        public = {"id": data["id"], "voters": data["voters"], "counts": None if hidden else data["counts"]}
        return {**public, "voter_id": data["voter_id"], "choice": data["choice"]} if cls == "related" else public
    raise ValueError(f"no view for event kind {kind!r}")


def render(room: Room, event: Event, viewer: Actor) -> str:
    """The event as the JSON frame this viewer receives, serialized once per viewer class."""
    cls = viewer_class(event, viewer)
    frame = event.rendered.get(cls)
    if frame is None:
        data = event_data(event, cls, room.polls)
        message: dict[str, Any] = {"type": "event", "epoch": room.log.epoch, "seq": event.seq}
        if data is None:
            message["kind"] = "skip"
        else:
            message.update(kind=event.kind, data=data)
        frame = protocol.dumps(message)
        event.rendered[cls] = frame
    return frame


def _question_snapshot(question: Question, viewer: Actor) -> dict[str, Any] | None:
    cls = "staff" if viewer.is_staff else ("related" if question.person_id == viewer.person_id else "public")
    return _question_view(question.to_data(), cls)


def snapshot(room: Room, viewer: Actor) -> dict[str, Any]:
    """The room as this viewer may see it now."""
    questions = [
        v
        for q in sorted(room.questions.values(), key=lambda q: q.id)
        if (v := _question_snapshot(q, viewer)) is not None
    ]
    polls = [
        v
        for poll in sorted(room.polls.values(), key=lambda p: p.id)
        if (v := _poll_view(poll.to_data(), "staff" if viewer.is_staff else "public")) is not None
    ]
    me = viewer.person_id
    return {
        "session_id": room.session_id,
        "state": room.state.value,
        "locked": room.locked,
        "pre_approval": room.pre_approval,
        "slow_mode_s": room.slow_mode_s,
        "roster": list(room.roster.values()) if viewer.is_staff else room.listed_roster(),
        "count": len(room.roster),
        "stage": [{"id": pid, "name": room.names.get(pid, f"Person {pid}")} for pid in room.stage],
        "hands": [
            {"person_id": pid, "name": room.names.get(pid, f"Person {pid}"), "at": at} for pid, at in room.hands.items()
        ],
        "chat": [{"id": m.id, "person_id": m.person_id, "name": m.name, "text": m.text, "at": m.at} for m in room.chat],
        "muted": sorted(room.muted) if viewer.is_staff else ([me] if me in room.muted else []),
        "questions": questions,
        "my_votes": sorted(q.id for q in room.questions.values() if me in q.voters),
        "polls": polls,
        "my_poll_votes": {str(poll.id): list(poll.votes[me]) for poll in room.polls.values() if me in poll.votes},
        "moderation": list(room.moderation) if viewer.is_staff else [],
        "captions": list(room.captions),
        "partials": list(room.partials.values()),
        "media_muted": [
            {"person_id": pid, "kind": kind, "by": by}
            for pid, kinds in sorted(room.media_muted.items())
            for kind, by in sorted(kinds.items())
        ],
        "cafe": cafe_room.snapshot(room),
    }
