"""The room wire protocol, version 1: every message a client or the server may send, defined once.

Client messages are pydantic models with a ``type`` literal, parsed at the edge by ``parse_client``:
unknown types, unknown or duplicate keys and wrong types become ``ProtocolError`` with a code, never
a crash. Server messages are built by the helpers at the bottom. ``docs/protocol.md`` shows an
example of each.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
CHAT_MAX_CHARS = 2000
QUESTION_MAX_CHARS = 1000
ANSWER_MAX_CHARS = 4000
POLL_MAX_OPTIONS = 10
CAPTION_MAX_CHARS = 500  # one typed caption line

Ref = Annotated[str, Field(max_length=64)]
PersonId = Annotated[int, Field(ge=1)]
ItemId = Annotated[int, Field(ge=1)]


class ProtocolError(Exception):
    """A message that cannot be accepted; ``code`` is sent back in an ``error`` message."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    ref: Ref | None = None


def _text(limit: int) -> Any:
    return Annotated[str, Field(min_length=1, max_length=limit)]


class _TextMessage(ClientMessage):
    @field_validator("text", check_fields=False)
    @classmethod
    def _strip(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("must not be blank")
        return stripped


# Session start and keep-alive -----------------------------------------------------------------------


class Hello(ClientMessage):
    type: Literal["hello"]
    v: Literal[1] = 1


class Resume(ClientMessage):
    type: Literal["resume"]
    v: Literal[1] = 1
    epoch: Annotated[str, Field(max_length=64)]
    last_seq: Annotated[int, Field(ge=0)]


class Ping(ClientMessage):
    type: Literal["ping"]


# Room lifecycle and people ------------------------------------------------------------------------


class SetRoomState(ClientMessage):
    type: Literal["room.state"]
    state: Literal["open", "live", "ended"]


class LockRoom(ClientMessage):
    type: Literal["room.lock"]
    locked: bool


class RemoveParticipant(ClientMessage):
    type: Literal["participant.remove"]
    person_id: PersonId


class RaiseHand(ClientMessage):
    type: Literal["hand.raise"]


class LowerHand(ClientMessage):
    """Lower one's own hand, or (moderators) someone else's."""

    type: Literal["hand.lower"]
    person_id: PersonId | None = None


class InviteToStage(ClientMessage):
    type: Literal["stage.invite"]
    person_id: PersonId


class RemoveFromStage(ClientMessage):
    type: Literal["stage.remove"]
    person_id: PersonId


class JoinStage(ClientMessage):
    """Speakers and moderators step on stage themselves."""

    type: Literal["stage.join"]


class LeaveStage(ClientMessage):
    type: Literal["stage.leave"]


# Media: moderation is a room command; signaling goes to the media layer (see docs/media.md) ---------

SDP_MAX_CHARS = 32 * 1024
MediaKind = Literal["audio", "video"]


class MuteMedia(ClientMessage):
    """Mute or unmute a speaker's microphone or camera: one's own, or (moderators) anyone's on stage."""

    type: Literal["media.mute"]
    kind: MediaKind
    muted: bool
    person_id: PersonId | None = None


class MediaSignal(ClientMessage):
    """Base of the WebRTC signaling messages, handled by the media service rather than the room."""


class PublishMedia(MediaSignal):
    """An SDP offer from a person on stage for their publishing connection (first or renegotiated)."""

    type: Literal["media.publish"]
    sdp: Annotated[str, Field(min_length=1, max_length=SDP_MAX_CHARS)]


class UnpublishMedia(MediaSignal):
    type: Literal["media.unpublish"]


class SubscribeMedia(MediaSignal):
    """Ask for the stage's audio (and video unless ``video`` is false); the server replies with an offer."""

    type: Literal["media.subscribe"]
    video: bool = True


class AnswerMedia(MediaSignal):
    """The client's SDP answer to the server's ``media.offer`` for the subscribing connection."""

    type: Literal["media.answer"]
    sdp: Annotated[str, Field(min_length=1, max_length=SDP_MAX_CHARS)]


class IceCandidate(MediaSignal):
    """A trickled ICE candidate of the client (``candidate`` empty: end of candidates)."""

    type: Literal["media.ice"]
    pc: Literal["publish", "subscribe"]
    candidate: Annotated[str, Field(max_length=1024)]
    sdp_mid: Annotated[str, Field(max_length=64)] | None = None
    sdp_mline_index: Annotated[int, Field(ge=0, le=255)] | None = None


class MediaPrefs(MediaSignal):
    """Audio-only (``video`` false) saves bandwidth: the server stops sending video to this connection."""

    type: Literal["media.prefs"]
    video: bool


# Chat ---------------------------------------------------------------------------------------------


class SendChat(_TextMessage):
    type: Literal["chat.send"]
    text: _text(CHAT_MAX_CHARS)  # type: ignore[valid-type]


class DeleteChat(ClientMessage):
    type: Literal["chat.delete"]
    message_id: ItemId


class MuteChat(ClientMessage):
    type: Literal["chat.mute"]
    person_id: PersonId
    muted: bool


class SlowMode(ClientMessage):
    type: Literal["chat.slow_mode"]
    interval_s: Annotated[int, Field(ge=0, le=600)]


# Questions ----------------------------------------------------------------------------------------


class AskQuestion(_TextMessage):
    type: Literal["question.ask"]
    text: _text(QUESTION_MAX_CHARS)  # type: ignore[valid-type]
    anonymous: bool = False


class VoteQuestion(ClientMessage):
    type: Literal["question.vote"]
    question_id: ItemId


class UnvoteQuestion(ClientMessage):
    type: Literal["question.unvote"]
    question_id: ItemId


class ModerateQuestion(ClientMessage):
    type: Literal["question.moderate"]
    question_id: ItemId
    action: Literal["approve", "dismiss", "pin", "unpin", "answer"]
    answer: Annotated[str, Field(max_length=ANSWER_MAX_CHARS)] | None = None


class QaSettings(ClientMessage):
    type: Literal["qa.settings"]
    pre_approval: bool


# Polls --------------------------------------------------------------------------------------------


class CreatePoll(ClientMessage):
    type: Literal["poll.create"]
    question: Annotated[str, Field(min_length=1, max_length=300)]
    options: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=2, max_length=POLL_MAX_OPTIONS)
    ]
    multiple: bool = False
    results: Literal["live", "on_close"] = "live"


class OpenPoll(ClientMessage):
    type: Literal["poll.open"]
    poll_id: ItemId


class ClosePoll(ClientMessage):
    type: Literal["poll.close"]
    poll_id: ItemId


class VotePoll(ClientMessage):
    type: Literal["poll.vote"]
    poll_id: ItemId
    option_ids: Annotated[
        list[Annotated[int, Field(ge=0, lt=POLL_MAX_OPTIONS)]], Field(min_length=1, max_length=POLL_MAX_OPTIONS)
    ]


# Captions typed by a human captioner -----------------------------------------------------------------


class TypeCaption(ClientMessage):
    """A captioner's line on the human track: the text so far while typing (``final`` false; empty clears
    it), then the finished line (``final`` true). ``speaker`` names who is speaking (default: the captioner)."""

    type: Literal["caption.type"]
    text: Annotated[str, Field(max_length=CAPTION_MAX_CHARS)]
    final: bool = False
    speaker: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _final_has_text(self) -> TypeCaption:
        if self.final and not self.text.strip():
            raise ValueError("a final caption must not be blank")
        return self

    @field_validator("text", "speaker")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None


# Knowledge cafés (see realtime/cafe_room.py) ------------------------------------------------------

CAFE_TOPIC_MAX_CHARS = 200
CAFE_NOTE_MAX_CHARS = 1000
CAFE_MAX_SEATS = 20
CAFE_ROUND_MAX_S = 4 * 3600


class AddCafeTable(ClientMessage):
    type: Literal["cafe.table.add"]
    topic: Annotated[str, Field(min_length=1, max_length=CAFE_TOPIC_MAX_CHARS)]
    seats: Annotated[int, Field(ge=1, le=CAFE_MAX_SEATS)]
    host_id: PersonId | None = None

    @field_validator("topic")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class JoinCafeTable(ClientMessage):
    type: Literal["cafe.join"]
    table_id: ItemId


class LeaveCafeTable(ClientMessage):
    type: Literal["cafe.leave"]


class SeatCafe(ClientMessage):
    """Moderators: seat everyone present automatically (even tables, mixed)."""

    type: Literal["cafe.seat"]


class RotateCafe(ClientMessage):
    """Moderators: move everyone but the hosts now (between rounds)."""

    type: Literal["cafe.rotate"]


class StartCafeRound(ClientMessage):
    type: Literal["cafe.round.start"]
    duration_s: Annotated[int, Field(ge=10, le=CAFE_ROUND_MAX_S)]


class AdjustCafeRound(ClientMessage):
    """Extend (positive) or shorten (negative) the running round."""

    type: Literal["cafe.round.adjust"]
    delta_s: Annotated[int, Field(ge=-CAFE_ROUND_MAX_S, le=CAFE_ROUND_MAX_S)]


class EndCafeRound(ClientMessage):
    type: Literal["cafe.round.end"]


class SendCafeChat(_TextMessage):
    type: Literal["cafe.chat"]
    text: _text(CHAT_MAX_CHARS)


class AddCafeNote(_TextMessage):
    """A card in the notes of one's table (moderators name the table)."""

    type: Literal["cafe.note.add"]
    text: _text(CAFE_NOTE_MAX_CHARS)
    table_id: ItemId | None = None


class EditCafeNote(_TextMessage):
    type: Literal["cafe.note.edit"]
    note_id: ItemId
    text: _text(CAFE_NOTE_MAX_CHARS)


class DeleteCafeNote(ClientMessage):
    type: Literal["cafe.note.delete"]
    note_id: ItemId


class MarkCafeInsight(ClientMessage):
    """Hosts (and moderators): mark a card as a key insight, or unmark it."""

    type: Literal["cafe.note.insight"]
    note_id: ItemId
    insight: bool


class CafeBroadcast(ClientMessage):
    """Moderators: speak to every table at once (on), or hand the tables back their own audio (off)."""

    type: Literal["cafe.broadcast"]
    on: bool


class CafePlenary(ClientMessage):
    """Moderators: open the plenary board; with a table, that table reports back now."""

    type: Literal["cafe.plenary"]
    table_id: ItemId | None = None


CafeCommand = (
    AddCafeTable
    | JoinCafeTable
    | LeaveCafeTable
    | SeatCafe
    | RotateCafe
    | StartCafeRound
    | AdjustCafeRound
    | EndCafeRound
    | SendCafeChat
    | AddCafeNote
    | EditCafeNote
    | DeleteCafeNote
    | MarkCafeInsight
    | CafeBroadcast
    | CafePlenary
)


Command = (
    SetRoomState
    | LockRoom
    | RemoveParticipant
    | RaiseHand
    | LowerHand
    | InviteToStage
    | RemoveFromStage
    | JoinStage
    | LeaveStage
    | MuteMedia
    | SendChat
    | DeleteChat
    | MuteChat
    | SlowMode
    | AskQuestion
    | VoteQuestion
    | UnvoteQuestion
    | ModerateQuestion
    | QaSettings
    | CreatePoll
    | OpenPoll
    | ClosePoll
    | VotePoll
    | TypeCaption
    | CafeCommand
)
Signal = PublishMedia | UnpublishMedia | SubscribeMedia | AnswerMedia | IceCandidate | MediaPrefs
AnyClientMessage = Annotated[Hello | Resume | Ping | Command | Signal, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyClientMessage)
MESSAGE_TYPES = frozenset(
    model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for model in (Hello, Resume, Ping, *Command.__args__, *Signal.__args__)  # type: ignore[attr-defined]
)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ProtocolError("duplicate_key", f"key {key!r} appears twice")
        seen[key] = value
    return seen


def parse_client(raw: str | bytes) -> Hello | Resume | Ping | Command | Signal:
    """Parse one client frame.

    Raises:
        ProtocolError: with code ``too_large``, ``bad_json``, ``duplicate_key``, ``unknown_type`` or ``invalid``.
    """
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"frame of {size} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid", "a message must be a JSON object")
    ref = data.get("ref") if isinstance(data.get("ref"), str) else None
    kind = data.get("type")
    if kind not in MESSAGE_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}", ref)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'message'}: "
            + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        )
        raise ProtocolError("invalid", details, ref) from None


# Server messages ----------------------------------------------------------------------------------


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def welcome(
    you: dict[str, Any], epoch: str, seq: int, snapshot: dict[str, Any], reason: str = "join"
) -> dict[str, Any]:
    return {
        "type": "welcome",
        "v": PROTOCOL_VERSION,
        "reason": reason,
        "you": you,
        "epoch": epoch,
        "seq": seq,
        "snapshot": snapshot,
    }


def resumed(epoch: str, seq: int, missed: int) -> dict[str, Any]:
    return {"type": "resumed", "v": PROTOCOL_VERSION, "epoch": epoch, "seq": seq, "missed": missed}


def error(code: str, message: str, ref: str | None = None, retry_after_s: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        body["ref"] = ref
    if retry_after_s is not None:
        body["retry_after_s"] = round(retry_after_s, 1)
    return body


def ack(ref: str) -> dict[str, Any]:
    return {"type": "ack", "ref": ref}


PONG = {"type": "pong"}

# Server messages of the media layer, outside the event sequence (like ack and pong).
MEDIA_SERVER_TYPES = frozenset(
    {"media.config", "media.answer", "media.offer", "media.tracks", "media.levels", "media.stopped"}
)
SERVER_TYPES = frozenset({"welcome", "resumed", "event", "error", "ack", "pong"}) | MEDIA_SERVER_TYPES
