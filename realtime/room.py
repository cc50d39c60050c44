"""The room state machine: who is here, the stage, hands, chat, questions, polls and moderation.

Sans I/O: ``decide(actor, command, now)`` checks a command against the state and the actor's role
and returns the events it causes, changing nothing; the server then commits the durable ones
(filling in database ids) and calls ``apply(events)``, the one place where the state changes and
sequence numbers are given. Views of the state per viewer live in ``realtime.views``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from realtime import cafe_room
from realtime import protocol as p
from realtime.log import Event, EventLog

CHAT_KEPT = 200
# Roles shown by name in the roster to everyone; participants and viewers are counted (see listed_roster).
LISTED_ROLES = frozenset({"organizer", "moderator", "speaker"})
MODERATION_KEPT = 200
CAPTIONS_KEPT = 50
# A typed line is shown for at least this long in a transcript file (its cue runs from the first keystroke).
HUMAN_CAPTION_MIN_S = 1.0


class Role(StrEnum):
    ORGANIZER = "organizer"
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    CAPTIONER = "captioner"  # types captions into the human track
    PARTICIPANT = "participant"


STAFF = frozenset({Role.ORGANIZER, Role.MODERATOR})


class RoomState(StrEnum):
    CLOSED = "closed"  # doors not open yet: staff and speakers only
    OPEN = "open"  # doors open before the start
    LIVE = "live"
    ENDED = "ended"  # read-only


TRANSITIONS: dict[RoomState, frozenset[RoomState]] = {
    RoomState.CLOSED: frozenset({RoomState.OPEN, RoomState.LIVE, RoomState.ENDED}),
    RoomState.OPEN: frozenset({RoomState.LIVE, RoomState.ENDED}),
    RoomState.LIVE: frozenset({RoomState.ENDED}),
    RoomState.ENDED: frozenset(),
}


class QuestionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


PUBLIC_QUESTION = frozenset({QuestionStatus.APPROVED, QuestionStatus.ANSWERED})


class PollState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class CaptionTrack(StrEnum):
    """The caption tracks a viewer can choose between; every caption event names its own."""

    MACHINE = "machine"  # recognised speech, in the language spoken
    TRANSLATION = "translation"  # recognised speech translated to English (Whisper's translate task)
    HUMAN = "human"  # typed by the session's captioner


def caption_key(speaker: dict[str, Any]) -> str:
    """Which stream a caption belongs to: one per speaker (or named source) and track."""
    return f"{speaker.get('speaker_id')}|{speaker.get('speaker')}|{speaker.get('track')}"


class RoomError(Exception):
    """A command the room refuses; ``code`` goes back to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Actor:
    person_id: int
    name: str
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


@dataclass
class Member:
    person_id: int
    name: str
    role: Role
    connections: int = 0


@dataclass
class ChatMessage:
    id: int
    person_id: int
    name: str
    text: str
    at: float


@dataclass
class Question:
    id: int
    person_id: int
    name: str
    text: str
    anonymous: bool
    status: QuestionStatus
    at: float
    pinned: bool = False
    answer: str | None = None
    voters: set[int] = field(default_factory=set)

    def to_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person_id": self.person_id,
            "name": self.name,
            "text": self.text,
            "anonymous": self.anonymous,
            "status": self.status.value,
            "at": self.at,
            "pinned": self.pinned,
            "answer": self.answer,
            "votes": len(self.voters),
        }


@dataclass
class Poll:
    id: int
    question: str
    options: list[str]
    multiple: bool
    results: str
    state: PollState = PollState.DRAFT
    votes: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def counts(self) -> list[int]:
        counts = [0] * len(self.options)
        for choice in self.votes.values():
            for option in choice:
                counts[option] += 1
        return counts

    def to_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "options": self.options,
            "multiple": self.multiple,
            "results": self.results,
            "state": self.state.value,
            "counts": self.counts(),
            "voters": len(self.votes),
        }


@dataclass
class RoomSettings:
    """The durable settings of a room, as stored by the server."""

    state: RoomState = RoomState.CLOSED
    locked: bool = False
    pre_approval: bool = False
    slow_mode_s: int = 0
    stage: list[int] = field(default_factory=list)
    muted: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


class Room:
    """One session's live room."""

    def __init__(
        self,
        session_id: int,
        settings: RoomSettings | None = None,
        epoch: str | None = None,
        language: str = "en",
        cafe: bool = False,
    ) -> None:
        settings = settings or RoomSettings()
        self.session_id = session_id
        self.language = language  # the session's: what its captioner types in
        self.log = EventLog(epoch)
        self.state = settings.state
        self.locked = settings.locked
        self.pre_approval = settings.pre_approval
        self.slow_mode_s = settings.slow_mode_s
        self.stage: list[int] = list(settings.stage)
        self.muted: set[int] = set(settings.muted)
        self.removed: set[int] = set(settings.removed)
        self.members: dict[int, Member] = {}  # who is connected now
        self.roster: dict[int, dict[str, Any]] = {}  # presence as announced (see flush_presence)
        self.listed: list[dict[str, Any]] | None = None  # the roster's LISTED_ROLES, kept until it changes
        self.names: dict[int, str] = {}
        self.hands: dict[int, float] = {}
        self.chat: deque[ChatMessage] = deque(maxlen=CHAT_KEPT)
        self.last_chat_at: dict[int, float] = {}
        self.questions: dict[int, Question] = {}
        self.polls: dict[int, Poll] = {}
        self.moderation: deque[dict[str, Any]] = deque(maxlen=MODERATION_KEPT)
        self.captions: deque[dict[str, Any]] = deque(maxlen=CAPTIONS_KEPT)
        self.partials: dict[str, dict[str, Any]] = {}  # the caption being spoken, per speaker and track
        # Speakers' muted microphone/camera: person -> kind -> "self" or "moderator" (who may lift it).
        self.media_muted: dict[int, dict[str, str]] = {}
        # A knowledge café's tables, rounds and notes (realtime/cafe_room.py); None in other sessions.
        self.cafe: cafe_room.CafeState | None = cafe_room.CafeState() if cafe else None

    # Loading ----------------------------------------------------------------------------------------

    def load_names(self, names: dict[int, str]) -> None:
        """Names of people the room refers to while they are away (e.g. on stage before a restart)."""
        self.names.update(names)

    def settings(self) -> RoomSettings:
        return RoomSettings(
            self.state,
            self.locked,
            self.pre_approval,
            self.slow_mode_s,
            list(self.stage),
            sorted(self.muted),
            sorted(self.removed),
        )

    def load_chat(self, message: ChatMessage) -> None:
        self.chat.append(message)

    def load_question(self, question: Question) -> None:
        self.questions[question.id] = question

    def load_poll(self, poll: Poll) -> None:
        self.polls[poll.id] = poll

    def load_moderation(self, entry: dict[str, Any]) -> None:
        self.moderation.append(entry)

    def load_caption(self, caption: dict[str, Any]) -> None:
        self.captions.append(caption)

    # Captions (published by the server's captioning pipeline, not by clients) -------------------------

    def decide_captions(
        self,
        speaker: dict[str, Any],
        finals: list[tuple[float, float, str, float]],
        partial: tuple[float, float, str] | None,
        lag_s: float | None = None,
    ) -> list[Event]:
        """Events for a caption update of one speaker's stream: new final captions, then the partial
        caption that replaces the previous one (empty text clears it). Changes nothing.

        Args:
            speaker: ``speaker_id`` (or None), ``speaker`` (a name), ``track`` and ``language``.
            finals: (start_s, end_s, text, at): times on the stream's clock, and the wall-clock time
                (epoch seconds) at which the first word was spoken.
            lag_s: how far behind the speech the captions run, shown with the partial caption.
        """
        events = [
            Event(
                "caption.final",
                {"id": 0, **speaker, "text": text, "start_s": start, "end_s": end, "at": round(at, 3)},
            )
            for start, end, text, at in finals
        ]
        key = caption_key(speaker)
        text = partial[2] if partial else ""
        if text != self.partials.get(key, {}).get("text", ""):
            start, end = (partial[0], partial[1]) if partial else (0.0, 0.0)
            data = {**speaker, "text": text, "start_s": start, "end_s": end}
            if lag_s is not None:
                data["lag_s"] = round(lag_s, 1)
            events.append(Event("caption.partial", data, durable=False))
        return events

    # Admission and presence -------------------------------------------------------------------------

    def admit(self, actor: Actor) -> None:
        """Check that the actor may enter.

        Raises:
            RoomError: ``removed``, ``room_closed`` or ``room_locked``.
        """
        if actor.person_id in self.removed and not actor.is_staff:
            raise RoomError("removed", "you were removed from this session")
        if actor.is_staff or actor.role in (Role.SPEAKER, Role.CAPTIONER):
            return
        if self.state is RoomState.CLOSED:
            raise RoomError("room_closed", "the doors are not open yet")
        if self.locked and actor.person_id not in self.members:
            raise RoomError("room_locked", "the room is locked; no one new may enter")

    def connect(self, actor: Actor) -> None:
        """A connection of ``actor`` arrived; the first one makes them present (announced at the next flush)."""
        self.names[actor.person_id] = actor.name
        member = self.members.get(actor.person_id)
        if member is not None:
            member.connections += 1
            return
        self.members[actor.person_id] = Member(actor.person_id, actor.name, actor.role, 1)

    def disconnect(self, person_id: int) -> list[Event]:
        """A connection went away; the last one makes the person absent and lowers their hand at once."""
        member = self.members.get(person_id)
        if member is None:
            return []
        member.connections -= 1
        if member.connections > 0:
            return []
        del self.members[person_id]
        events = self._stop_typing(person_id)
        if person_id in self.hands:
            events.append(Event("hand.lowered", {"person_id": person_id}, durable=False))
        return self.apply(events)

    def listed_roster(self) -> list[dict[str, Any]]:
        """The announced people shown by name to everyone (staff and speakers); the rest are a count.

        Kept between presence changes: a plenary's newcomers arrive by the thousand, and each one's
        snapshot would otherwise walk the whole audience.
        """
        if self.listed is None:
            self.listed = [p for p in self.roster.values() if p["role"] in LISTED_ROLES]
        return self.listed

    def presence_pending(self) -> bool:
        return self.roster.keys() != self.members.keys()

    def flush_presence(self) -> list[Event]:
        """Announce everyone who came or went since the last flush, in one event.

        Presence is batched so that an audience of thousands arriving together costs one event per
        flush for each viewer, not one per arrival (which grows with the square of the audience).
        """
        if not self.presence_pending():
            return []
        joined = [
            {"id": m.person_id, "name": m.name, "role": m.role.value}
            for pid, m in self.members.items()
            if pid not in self.roster
        ]
        left = [person for pid, person in self.roster.items() if pid not in self.members]
        data = {"joined": joined, "left": left, "count": len(self.members)}
        return self.apply([Event("presence.changed", data, durable=False)])

    # Commands ---------------------------------------------------------------------------------------

    def decide(self, actor: Actor, command: p.Command, now: float) -> list[Event]:
        """The events ``command`` would cause; raises ``RoomError`` if it is not allowed. Changes nothing."""
        handler = getattr(self, "_on_" + command.type.replace(".", "_"), None)
        if self.state is RoomState.ENDED and not isinstance(command, p.SetRoomState):
            raise RoomError("room_ended", "this session has ended")
        if command.type.startswith("cafe."):
            return cafe_room.decide(self, actor, command, now)  # type: ignore[arg-type]
        return handler(actor, command, now)

    def _staff(self, actor: Actor) -> None:
        if not actor.is_staff:
            raise RoomError("forbidden", "only moderators may do this")

    def _moderated(self, actor: Actor, action: str, now: float, target: int | None = None, **detail: Any) -> Event:
        entry = {
            "actor_id": actor.person_id,
            "actor": actor.name,
            "action": action,
            "target_person_id": target,
            "detail": detail,
            "at": now,
        }
        return Event("moderation.logged", entry)

    def _on_room_state(self, actor: Actor, command: p.SetRoomState, now: float) -> list[Event]:
        self._staff(actor)
        target = RoomState(command.state)
        if target not in TRANSITIONS[self.state]:
            raise RoomError("bad_transition", f"a {self.state.value} room cannot become {target.value}")
        events = [
            Event("room.state", {"state": target.value}),
            self._moderated(actor, "room.state", now, state=target.value),
        ]
        if target is RoomState.ENDED:
            events += [Event("hand.lowered", {"person_id": pid}, durable=False) for pid in self.hands]
        return events

    def _on_room_lock(self, actor: Actor, command: p.LockRoom, now: float) -> list[Event]:
        self._staff(actor)
        return [
            Event("room.locked", {"locked": command.locked}),
            self._moderated(actor, "room.lock", now, locked=command.locked),
        ]

    def _on_participant_remove(self, actor: Actor, command: p.RemoveParticipant, now: float) -> list[Event]:
        self._staff(actor)
        target = command.person_id
        if target == actor.person_id:
            raise RoomError("invalid", "you cannot remove yourself")
        member = self.members.get(target)
        if member is None:
            raise RoomError("not_found", "that person is not in the room")
        if member.role in STAFF:
            raise RoomError("forbidden", "moderators cannot be removed")
        events = [Event("participant.removed", {"person_id": target}, related=frozenset({target}))]
        if target in self.stage:
            events.append(Event("stage.left", {"person_id": target}))
        if target in self.hands:
            events.append(Event("hand.lowered", {"person_id": target}, durable=False))
        return [*events, self._moderated(actor, "participant.remove", now, target)]

    def _on_hand_raise(self, actor: Actor, command: p.RaiseHand, now: float) -> list[Event]:
        if actor.person_id in self.stage:
            raise RoomError("invalid", "you are already on stage")
        if actor.person_id in self.hands:
            return []
        return [Event("hand.raised", {"person_id": actor.person_id, "name": actor.name, "at": now}, durable=False)]

    def _on_hand_lower(self, actor: Actor, command: p.LowerHand, now: float) -> list[Event]:
        target = command.person_id or actor.person_id
        if target != actor.person_id:
            self._staff(actor)
        if target not in self.hands:
            return []
        return [Event("hand.lowered", {"person_id": target}, durable=False)]

    def _on_stage_invite(self, actor: Actor, command: p.InviteToStage, now: float) -> list[Event]:
        self._staff(actor)
        target = command.person_id
        if target not in self.members:
            raise RoomError("not_found", "that person is not in the room")
        if target in self.stage:
            return []
        events = [Event("stage.joined", {"person_id": target, "name": self.members[target].name})]
        if target in self.hands:
            events.append(Event("hand.lowered", {"person_id": target}, durable=False))
        return [*events, self._moderated(actor, "stage.invite", now, target)]

    def _on_stage_remove(self, actor: Actor, command: p.RemoveFromStage, now: float) -> list[Event]:
        self._staff(actor)
        if command.person_id not in self.stage:
            return []
        return [
            Event("stage.left", {"person_id": command.person_id}),
            self._moderated(actor, "stage.remove", now, command.person_id),
        ]

    def _on_stage_join(self, actor: Actor, command: p.JoinStage, now: float) -> list[Event]:
        if not (actor.is_staff or actor.role is Role.SPEAKER):
            raise RoomError("forbidden", "raise your hand and a moderator can invite you on stage")
        if actor.person_id in self.stage:
            return []
        return [Event("stage.joined", {"person_id": actor.person_id, "name": actor.name})]

    def _on_stage_leave(self, actor: Actor, command: p.LeaveStage, now: float) -> list[Event]:
        if actor.person_id not in self.stage:
            return []
        return [Event("stage.left", {"person_id": actor.person_id})]

    def _on_media_mute(self, actor: Actor, command: p.MuteMedia, now: float) -> list[Event]:
        target = command.person_id or actor.person_id
        current = self.media_muted.get(target, {}).get(command.kind)
        if target != actor.person_id:
            self._staff(actor)
            if command.muted and target not in self.stage:
                raise RoomError("not_on_stage", "that person is not on stage")
            by = "moderator"
        else:
            if not command.muted and current == "moderator" and not actor.is_staff:
                raise RoomError("forbidden", "a moderator muted you; ask them to unmute you")
            by = "self"
        if command.muted and current in {by, "moderator"}:
            return []  # already muted, as strongly
        if not command.muted and current in {None, "self"} and by == "moderator":
            return []  # only the speaker turns their own microphone or camera on
        if not command.muted and current is None:
            return []
        data = {"person_id": target, "kind": command.kind, "muted": command.muted, "by": by}
        if by == "self":
            return [Event("media.muted", data, durable=False)]
        if not command.muted:
            # Lifting a moderator's mute hands control back: the speaker stays muted until they unmute.
            data = {**data, "muted": True, "by": "self"}
        action = "media.mute" if command.muted else "media.allow"
        return [
            Event("media.muted", data, durable=False),
            self._moderated(actor, action, now, target, kind=command.kind),
        ]

    def _on_caption_type(self, actor: Actor, command: p.TypeCaption, now: float) -> list[Event]:
        """A captioner's line: while typing, a partial caption of the human track (empty text clears it);
        when sent, a final caption that runs from the line's first keystroke."""
        if not (actor.is_staff or actor.role is Role.CAPTIONER):
            raise RoomError("forbidden", "only the session's captioners may type captions")
        speaker = {
            "speaker_id": None,
            "speaker": command.speaker or actor.name,
            "track": CaptionTrack.HUMAN.value,
            "language": self.language,
        }
        key = caption_key(speaker)
        typing = self.partials.get(key)
        started = typing["at"] if typing else now
        events = self._stop_typing(actor.person_id, keep=key)
        if command.final:
            duration = max(HUMAN_CAPTION_MIN_S, now - started)
            data = {"id": 0, **speaker, "text": command.text, "start_s": 0.0, "end_s": round(duration, 3)}
            events.append(Event("caption.final", {**data, "at": round(started, 3)}))
        text = "" if command.final else command.text
        if text != (typing or {}).get("text", ""):
            partial = {**speaker, "text": text, "start_s": 0.0, "end_s": round(now - started, 3), "at": started}
            events.append(Event("caption.partial", {**partial, "captioner_id": actor.person_id}, durable=False))
        return events

    def _stop_typing(self, person_id: int, keep: str | None = None) -> list[Event]:
        """Clear the partial lines a captioner left under another speaker's name (or all, on leaving)."""
        return [
            Event("caption.partial", {**partial, "text": ""}, durable=False)
            for key, partial in self.partials.items()
            if partial.get("captioner_id") == person_id and key != keep
        ]

    def _on_chat_send(self, actor: Actor, command: p.SendChat, now: float) -> list[Event]:
        if actor.person_id in self.muted:
            raise RoomError("muted", "a moderator has muted you in the chat")
        if self.slow_mode_s and not actor.is_staff:
            last = self.last_chat_at.get(actor.person_id)
            if last is not None and now - last < self.slow_mode_s:
                wait = self.slow_mode_s - (now - last)
                raise RoomError("slow_mode", f"slow mode: wait {wait:.0f} s before your next message")
        data = {"id": 0, "person_id": actor.person_id, "name": actor.name, "text": command.text, "at": now}
        return [Event("chat.posted", data)]

    def _on_chat_delete(self, actor: Actor, command: p.DeleteChat, now: float) -> list[Event]:
        self._staff(actor)
        message = next((m for m in self.chat if m.id == command.message_id), None)
        if message is None:
            raise RoomError("not_found", f"no chat message {command.message_id} in this room")
        return [
            Event("chat.deleted", {"id": message.id}),
            self._moderated(actor, "chat.delete", now, message.person_id, message_id=message.id),
        ]

    def _on_chat_mute(self, actor: Actor, command: p.MuteChat, now: float) -> list[Event]:
        self._staff(actor)
        target = command.person_id
        if (target in self.muted) == command.muted:
            return []
        if command.muted and target not in self.members:
            raise RoomError("not_found", "that person is not in the room")
        return [
            Event("chat.muted", {"person_id": target, "muted": command.muted}, related=frozenset({target})),
            self._moderated(actor, "chat.mute", now, target, muted=command.muted),
        ]

    def _on_chat_slow_mode(self, actor: Actor, command: p.SlowMode, now: float) -> list[Event]:
        self._staff(actor)
        return [
            Event("chat.slow_mode", {"interval_s": command.interval_s}),
            self._moderated(actor, "chat.slow_mode", now, interval_s=command.interval_s),
        ]

    def _on_question_ask(self, actor: Actor, command: p.AskQuestion, now: float) -> list[Event]:
        status = QuestionStatus.PENDING if self.pre_approval and not actor.is_staff else QuestionStatus.APPROVED
        question = Question(0, actor.person_id, actor.name, command.text, command.anonymous, status, now)
        return [Event("question.asked", {"question": question.to_data()}, related=frozenset({actor.person_id}))]

    def _question(self, question_id: int, actor: Actor) -> Question:
        question = self.questions.get(question_id)
        visible = question is not None and (
            question.status in PUBLIC_QUESTION or actor.is_staff or question.person_id == actor.person_id
        )
        if question is None or not visible:
            raise RoomError("not_found", f"no question {question_id} in this room")
        return question

    def _on_question_vote(self, actor: Actor, command: p.VoteQuestion, now: float) -> list[Event]:
        question = self._question(command.question_id, actor)
        if question.status not in PUBLIC_QUESTION:
            raise RoomError("invalid", "only approved questions can be voted on")
        if actor.person_id in question.voters:
            raise RoomError("already_voted", "you already voted for this question")
        data = {"id": question.id, "votes": len(question.voters) + 1, "voter_id": actor.person_id, "voted": True}
        return [Event("question.voted", data, related=frozenset({actor.person_id}))]

    def _on_question_unvote(self, actor: Actor, command: p.UnvoteQuestion, now: float) -> list[Event]:
        question = self._question(command.question_id, actor)
        if actor.person_id not in question.voters:
            return []
        data = {"id": question.id, "votes": len(question.voters) - 1, "voter_id": actor.person_id, "voted": False}
        return [Event("question.voted", data, related=frozenset({actor.person_id}))]

    def _on_question_moderate(self, actor: Actor, command: p.ModerateQuestion, now: float) -> list[Event]:
        self._staff(actor)
        question = self._question(command.question_id, actor)
        changed = Question(**{**question.__dict__, "voters": set(question.voters)})
        action = command.action
        if action == "approve":
            if question.status is not QuestionStatus.PENDING:
                raise RoomError("invalid", "only pending questions can be approved")
            changed.status = QuestionStatus.APPROVED
        elif action == "dismiss":
            changed.status, changed.pinned = QuestionStatus.DISMISSED, False
        elif action in ("pin", "unpin"):
            if question.status not in PUBLIC_QUESTION:
                raise RoomError("invalid", "only approved questions can be pinned")
            changed.pinned = action == "pin"
        else:
            if question.status is QuestionStatus.DISMISSED:
                raise RoomError("invalid", "a dismissed question cannot be answered")
            changed.status = QuestionStatus.ANSWERED
            changed.answer = (command.answer or "").strip() or None
        event = Event(
            "question.changed",
            {"question": changed.to_data(), "was": question.status.value},
            related=frozenset({question.person_id}),
        )
        return [event, self._moderated(actor, "question." + action, now, question.person_id, question_id=question.id)]

    def _on_qa_settings(self, actor: Actor, command: p.QaSettings, now: float) -> list[Event]:
        self._staff(actor)
        return [
            Event("qa.settings", {"pre_approval": command.pre_approval}),
            self._moderated(actor, "qa.settings", now, pre_approval=command.pre_approval),
        ]

    def _on_poll_create(self, actor: Actor, command: p.CreatePoll, now: float) -> list[Event]:
        self._staff(actor)
        poll = Poll(
            0, command.question.strip(), [o.strip() for o in command.options], command.multiple, command.results
        )
        return [
            Event("poll.changed", {"poll": poll.to_data()}),
            self._moderated(actor, "poll.create", now, question=poll.question),
        ]

    def _poll(self, poll_id: int, actor: Actor) -> Poll:
        poll = self.polls.get(poll_id)
        if poll is None or (poll.state is PollState.DRAFT and not actor.is_staff):
            raise RoomError("not_found", f"no poll {poll_id} in this room")
        return poll

    def _on_poll_open(self, actor: Actor, command: p.OpenPoll, now: float) -> list[Event]:
        self._staff(actor)
        poll = self._poll(command.poll_id, actor)
        if poll.state is not PollState.DRAFT:
            raise RoomError("invalid", f"the poll is {poll.state.value}")
        data = {**poll.to_data(), "state": PollState.OPEN.value}
        return [Event("poll.changed", {"poll": data}), self._moderated(actor, "poll.open", now, poll_id=poll.id)]

    def _on_poll_close(self, actor: Actor, command: p.ClosePoll, now: float) -> list[Event]:
        self._staff(actor)
        poll = self._poll(command.poll_id, actor)
        if poll.state is not PollState.OPEN:
            raise RoomError("invalid", f"the poll is {poll.state.value}")
        data = {**poll.to_data(), "state": PollState.CLOSED.value}
        return [Event("poll.changed", {"poll": data}), self._moderated(actor, "poll.close", now, poll_id=poll.id)]

    def _on_poll_vote(self, actor: Actor, command: p.VotePoll, now: float) -> list[Event]:
        poll = self._poll(command.poll_id, actor)
        if poll.state is not PollState.OPEN:
            raise RoomError("poll_closed", "this poll is not open")
        if actor.person_id in poll.votes:
            raise RoomError("already_voted", "you already voted in this poll")
        choice = tuple(sorted(set(command.option_ids)))
        if any(option >= len(poll.options) for option in choice):
            raise RoomError("invalid", "no such option")
        if len(choice) > 1 and not poll.multiple:
            raise RoomError("invalid", "choose one option")
        counts = poll.counts()
        for option in choice:
            counts[option] += 1
        data = {
            "id": poll.id,
            "counts": counts,
            "voters": len(poll.votes) + 1,
            "voter_id": actor.person_id,
            "choice": list(choice),
        }
        return [Event("poll.voted", data, related=frozenset({actor.person_id}))]

    # The one place where state changes ---------------------------------------------------------------

    def apply(self, events: list[Event]) -> list[Event]:
        """Apply decided (and, where durable, committed) events: stamp them and change the state."""
        for event in events:
            if event.kind.startswith("cafe."):
                cafe_room.apply(self, event)
            else:
                getattr(self, "_apply_" + event.kind.replace(".", "_"))(event.data)
            self.log.append(event)
        return events

    def _apply_presence_changed(self, data: dict[str, Any]) -> None:
        self.listed = None
        for person in data["left"]:
            self.roster.pop(person["id"], None)
        for person in data["joined"]:
            self.roster[person["id"]] = person

    def _apply_room_state(self, data: dict[str, Any]) -> None:
        self.state = RoomState(data["state"])

    def _apply_room_locked(self, data: dict[str, Any]) -> None:
        self.locked = data["locked"]

    def _apply_participant_removed(self, data: dict[str, Any]) -> None:
        self.removed.add(data["person_id"])

    def _apply_hand_raised(self, data: dict[str, Any]) -> None:
        self.hands[data["person_id"]] = data["at"]
        self.names[data["person_id"]] = data["name"]

    def _apply_hand_lowered(self, data: dict[str, Any]) -> None:
        self.hands.pop(data["person_id"], None)

    def _apply_stage_joined(self, data: dict[str, Any]) -> None:
        self.names[data["person_id"]] = data["name"]
        if data["person_id"] not in self.stage:
            self.stage.append(data["person_id"])

    def _apply_stage_left(self, data: dict[str, Any]) -> None:
        if data["person_id"] in self.stage:
            self.stage.remove(data["person_id"])

    def _apply_media_muted(self, data: dict[str, Any]) -> None:
        kinds = self.media_muted.setdefault(data["person_id"], {})
        if data["muted"]:
            kinds[data["kind"]] = data["by"]
        else:
            kinds.pop(data["kind"], None)
        if not kinds:
            del self.media_muted[data["person_id"]]

    def _apply_chat_posted(self, data: dict[str, Any]) -> None:
        self.chat.append(ChatMessage(data["id"], data["person_id"], data["name"], data["text"], data["at"]))
        self.last_chat_at[data["person_id"]] = data["at"]

    def _apply_chat_deleted(self, data: dict[str, Any]) -> None:
        kept = [m for m in self.chat if m.id != data["id"]]
        self.chat.clear()
        self.chat.extend(kept)

    def _apply_chat_muted(self, data: dict[str, Any]) -> None:
        (self.muted.add if data["muted"] else self.muted.discard)(data["person_id"])

    def _apply_chat_slow_mode(self, data: dict[str, Any]) -> None:
        self.slow_mode_s = data["interval_s"]

    def _apply_question_asked(self, data: dict[str, Any]) -> None:
        q = data["question"]
        self.questions[q["id"]] = Question(
            q["id"], q["person_id"], q["name"], q["text"], q["anonymous"], QuestionStatus(q["status"]), q["at"]
        )

    def _apply_question_voted(self, data: dict[str, Any]) -> None:
        voters = self.questions[data["id"]].voters
        (voters.add if data["voted"] else voters.discard)(data["voter_id"])

    def _apply_question_changed(self, data: dict[str, Any]) -> None:
        q = data["question"]
        question = self.questions[q["id"]]
        question.status, question.pinned, question.answer = QuestionStatus(q["status"]), q["pinned"], q["answer"]

    def _apply_qa_settings(self, data: dict[str, Any]) -> None:
        self.pre_approval = data["pre_approval"]

    def _apply_poll_changed(self, data: dict[str, Any]) -> None:
        d = data["poll"]
        poll = self.polls.get(d["id"])
        if poll is None:
            self.polls[d["id"]] = Poll(
                d["id"], d["question"], d["options"], d["multiple"], d["results"], PollState(d["state"])
            )
        else:
            poll.state = PollState(d["state"])

    def _apply_poll_voted(self, data: dict[str, Any]) -> None:
        self.polls[data["id"]].votes[data["voter_id"]] = tuple(data["choice"])

    def _apply_moderation_logged(self, data: dict[str, Any]) -> None:
        self.moderation.append(data)

    def _apply_caption_final(self, data: dict[str, Any]) -> None:
        self.captions.append(data)

    def _apply_caption_partial(self, data: dict[str, Any]) -> None:
        key = caption_key(data)
        self.partials.pop(key, None)  # re-inserted last, as clients append the newest
        if data["text"]:
            self.partials[key] = data
