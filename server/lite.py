"""The lite room socket, ``/ws/sessions/{session_id}/lite?track=machine``: the room socket of
``server/rooms/endpoint.py`` (same sign-in, Origin check, commands and resume) with its outgoing frames
cut down to what the lite page shows: the room's state, the head count, the Q&A and one caption track.

Why a filter rather than a new protocol: the lite page asks and votes with the room's own commands and
resumes with the room's own ``(epoch, seq)``. It drops the events it does not show, so it sees gaps in
``seq`` by design and never resyncs on them (a consumer that falls behind is still cut with 4408 and
resumes). Measured in ``bench/lite``: chat, presence batches and speaker levels are most of a busy room's
bytes; captions and questions are what a viewer on a poor connection came for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server.rooms.endpoint import room_socket
from server.wsproto import EXTENSION

TRACKS = ("machine", "translation", "human")
# Event kinds the lite page shows; everything else (chat, hands, stage, polls, moderation) is dropped.
KEPT_KINDS = {"room.state", "qa.settings", "question.asked", "question.changed", "question.voted"}
CAPTION_KINDS = {"caption.final", "caption.partial"}
CAPTION_FIELDS = ("speaker_id", "speaker", "track", "text", "lag_s")
QUESTION_VOTE_FIELDS = ("id", "votes", "voter_id", "voted")
# Media signaling the lite page's audio needs (levels are for the stage highlight it does not draw).
KEPT_MEDIA = {"media.config", "media.offer", "media.tracks", "media.stopped"}
SNAPSHOT_FIELDS = ("session_id", "state", "pre_approval", "count", "questions", "my_votes")
# A speaker's partial line at most this often (the captioner sends one every 0.5 s step; partials were 78 % of
# the lite page's bytes in bench/lite). Finals and the clearing of a line always pass.
PARTIAL_EVERY_S = 1.0


class LiteFilter:
    """Rewrites one connection's outgoing frames for the lite page; ``None`` means drop the frame."""

    def __init__(self, track: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.track = track
        self.count: int | None = None
        self.clock = clock
        self._partial_at: dict[tuple[Any, Any], float] = {}  # speaker -> when their last partial went out

    def frame(self, text: str) -> str | None:
        message = json.loads(text)
        kind = message.get("type")
        if kind == "event":
            data = self._event(message.get("kind"), message.get("data"))
            if data is None:
                return None
            return _dumps({**message, "data": data})
        if kind == "welcome":
            return _dumps({**message, "snapshot": self._snapshot(message["snapshot"])})
        if isinstance(kind, str) and kind.startswith("media.") and kind not in KEPT_MEDIA:
            return None
        return text

    def _event(self, kind: object, data: Any) -> dict[str, Any] | None:  # noqa: ANN401 - JSON
        if kind in KEPT_KINDS:
            if kind == "question.voted":
                return {k: data[k] for k in QUESTION_VOTE_FIELDS if k in data}
            return data
        if kind in CAPTION_KINDS:
            if (data.get("track") or "machine") != self.track or not self._partial_due(kind, data):
                return None
            return self._caption(data)
        if kind == "presence.changed":  # names are for the roster, which the lite page does not draw
            if data["count"] == self.count:
                return None
            self.count = data["count"]
            return {"count": self.count}
        return None

    def _partial_due(self, kind: object, data: dict[str, Any]) -> bool:
        """Whether a caption event goes out now: a speaker's partial lines are thinned to ``PARTIAL_EVERY_S``
        (a dropped one is overtaken by the next or by the final); finals and empty partials always go."""
        speaker = (data.get("speaker_id"), data.get("speaker"))
        if kind != "caption.partial" or not data.get("text"):
            self._partial_at.pop(speaker, None)  # the line ends: the next sentence's first partial goes at once
            return True
        now = self.clock()
        if now - self._partial_at.get(speaker, float("-inf")) < PARTIAL_EVERY_S:
            return False
        self._partial_at[speaker] = now
        return True

    @staticmethod
    def _caption(data: dict[str, Any]) -> dict[str, Any]:
        return {k: data[k] for k in CAPTION_FIELDS if data.get(k) is not None}

    def _snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        lite = {k: snapshot[k] for k in SNAPSHOT_FIELDS if k in snapshot}
        self.count = lite.get("count")
        for key in ("captions", "partials"):
            lite[key] = [self._caption(c) for c in snapshot.get(key, []) if (c.get("track") or "machine") == self.track]
        return lite


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class LiteWebSocket(WebSocket):
    """A WebSocket whose text frames pass through a ``LiteFilter`` on their way out; its visits are recorded
    on the ``lite`` attendance channel."""

    attendance_channel = "lite"

    def __init__(self, scope: Scope, receive: Receive, send: Send, lite: LiteFilter) -> None:
        super().__init__(scope, receive=receive, send=send)
        self.lite = lite

    async def send_text(self, data: str) -> None:
        frame = self.lite.frame(data)
        if frame is not None:
            await super().send_text(frame)


class LiteSocket:
    """ASGI endpoint of the lite socket (the room endpoint's checks and commands, lighter frames)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Without the ready-made frames of server/wsproto.py, which would go to the socket past the filter.
        extensions = {k: v for k, v in (scope.get("extensions") or {}).items() if k != EXTENSION}
        scope = {**scope, "extensions": extensions}
        track = WebSocket(scope, receive=receive, send=send).query_params.get("track", "machine")
        lite = LiteFilter(track if track in TRACKS else "machine")
        await room_socket(LiteWebSocket(scope, receive, send, lite))
