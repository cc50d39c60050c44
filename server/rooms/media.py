"""The media service: WebRTC signaling over the room socket, and the pass-through relay of each room.

Each connection may hold two peer connections with the server, so that each side always offers on
its own and offers never cross:

- **publish** (people on stage): the browser offers its microphone (and camera); the server answers,
  receiving only. Renegotiation (adding the camera) is a new ``media.publish`` offer.
- **subscribe** (everyone listening): the server offers one sending slot per stage track and the
  browser answers. When the stage changes, free slots are reused without renegotiation
  (``media.tracks`` says which slot carries whom); the server offers again only to add slots.

Codecs are pinned to Opus and VP8 on both legs. Who may publish is checked here against the room
(on stage, not removed); leaving the stage or being removed stops publishing at once, and a
moderator's mute is enforced by dropping the track's packets in the relay.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
    sdp,
)
from aiortc.sdp import candidate_from_sdp

from realtime import cafe_room, protocol
from realtime.log import Event
from realtime.media import hooks
from realtime.media.relay import Publication, SubscriberTrack
from realtime.media.tap import AudioTap
from server.settings import Settings

if TYPE_CHECKING:
    from server.rooms.service import Connection, LiveRoom

log = logging.getLogger("forumlive.media")

CODECS = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}
# Audio levels go to listeners at most this often, and only when they changed by a tenth.
LEVELS_INTERVAL_S = 0.5
# Café events that change who may speak or who hears whom.
CAFE_MEDIA_KINDS = frozenset({"cafe.seated", "cafe.broadcast", "stage.joined", "stage.left"})
# Peer connections one room may hold (publishing + subscribing) before new ones are refused.
MAX_PEERS_PER_ROOM = 400

# (session_id, person_id, tap): called when a speaker starts publishing audio.
TapListener = Callable[[int, int, str, AudioTap], None]


class MediaError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def codec_preferences(kind: str) -> list[Any]:
    wanted = CODECS[kind]
    return [c for c in RTCRtpReceiver.getCapabilities(kind).codecs if c.mimeType in wanted]


def turn_credentials(secret: str, user: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    """Short-lived TURN credentials in coturn's ``use-auth-secret`` scheme (username = expiry:user)."""
    username = f"{int((now or time.time()) + ttl_s)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(eq=False)
class Slot:
    transceiver: RTCRtpTransceiver
    track: SubscriberTrack


@dataclass(eq=False)
class Subscriber:
    connection: Connection
    pc: RTCPeerConnection
    video: bool
    slots: list[Slot] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    negotiating: bool = False
    again: bool = False


@dataclass(eq=False)
class Publisher:
    connection: Connection
    pc: RTCPeerConnection
    publications: list[Publication] = field(default_factory=list)


@dataclass(eq=False)
class MediaRoom:
    session_id: int
    publishers: dict[Connection, Publisher] = field(default_factory=dict)
    subscribers: dict[Connection, Subscriber] = field(default_factory=dict)
    taps: dict[int, AudioTap] = field(default_factory=dict)
    levels_task: asyncio.Task[None] | None = None
    last_levels: dict[str, float] = field(default_factory=dict)
    state: Any = None  # the realtime Room: who hears whom (a café's tables), set on first use

    def publications(self) -> list[Publication]:
        return [pub for peer in self.publishers.values() for pub in peer.publications if not pub.ended.is_set()]

    def peers(self) -> int:
        return len(self.publishers) + len(self.subscribers)


class MediaService:
    """Signaling and relay for every room of this process."""

    def __init__(self, settings: Settings, reply: Callable[[Connection, dict[str, Any]], None]) -> None:
        hooks.install()
        hooks.limit_host_addresses(settings.ice_host_addresses)
        self.settings = settings
        self.reply = reply
        self.rooms: dict[int, MediaRoom] = {}
        self.tap_listeners: list[TapListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def _configuration(self) -> RTCConfiguration:
        # Always explicit: with no configuration aiortc would ask a public STUN server.
        servers = [RTCIceServer(urls=list(self.settings.stun_urls))] if self.settings.stun_urls else []
        return RTCConfiguration(iceServers=servers)

    def ice_servers(self, person_id: int) -> list[dict[str, Any]]:
        """What a browser should use: the STUN list and TURN with credentials valid for ``turn_ttl_s``."""
        servers: list[dict[str, Any]] = []
        if self.settings.stun_urls:
            servers.append({"urls": list(self.settings.stun_urls)})
        if self.settings.turn_urls:
            username, credential = turn_credentials(self.settings.turn_secret, str(person_id), self.settings.turn_ttl_s)
            servers.append({"urls": list(self.settings.turn_urls), "username": username, "credential": credential})
        return servers

    def _room(self, session_id: int) -> MediaRoom:
        room = self.rooms.get(session_id)
        if room is None:
            room = self.rooms[session_id] = MediaRoom(session_id)
        return room

    # Signaling --------------------------------------------------------------------------------------

    async def handle(self, live: LiveRoom, connection: Connection, message: protocol.MediaSignal) -> None:
        """Run one signaling message; failures go back to the sender as ``error`` messages."""
        try:
            if isinstance(message, protocol.PublishMedia):
                await self._publish(live, connection, message.sdp)
            elif isinstance(message, protocol.UnpublishMedia):
                await self._close_publisher(live.room.session_id, connection, "unpublished")
            elif isinstance(message, protocol.SubscribeMedia):
                await self._subscribe(live, connection, message.video)
            elif isinstance(message, protocol.AnswerMedia):
                await self._answer(live, connection, message.sdp)
            elif isinstance(message, protocol.IceCandidate):
                await self._candidate(live, connection, message)
            elif isinstance(message, protocol.MediaPrefs):
                await self._prefs(live, connection, message.video)
        except MediaError as exc:
            self.reply(connection, protocol.error(exc.code, exc.message, message.ref))
            return
        except Exception as exc:  # aiortc raises many kinds on a bad SDP or a closed connection
            log.warning("media %s from person %s failed: %r", message.type, connection.actor.person_id, exc)
            self.reply(connection, protocol.error("media_failed", f"{message.type} failed: {exc}"[:200], message.ref))
            return
        if message.ref is not None:
            self.reply(connection, protocol.ack(message.ref))

    async def _publish(self, live: LiveRoom, connection: Connection, offer_sdp: str) -> None:
        person_id = connection.actor.person_id
        if not cafe_room.may_publish(live.room, person_id):
            raise MediaError("not_on_stage", "only people on stage (or at a café table) may publish")
        room = self._room(live.room.session_id)
        room.state = live.room
        description = _parse(offer_sdp, "offer")
        publisher = room.publishers.get(connection)
        if publisher is None:
            self._check_capacity(room)
            for other in [c for c in room.publishers if c.actor.person_id == person_id]:
                await self._close_publisher(room.session_id, other, "published from another tab")
            publisher = room.publishers[connection] = Publisher(connection, RTCPeerConnection(self._configuration()))
            pc = publisher.pc
            pc.on("track", lambda track: self._on_track(live, room, publisher, track))
            pc.on("connectionstatechange", lambda: self._on_state(room, connection, pc, "publish"))
        known = {t.mid for t in publisher.pc.getTransceivers()}
        for media in description.media:
            if media.kind in CODECS and media.rtp.muxId not in known:
                transceiver = publisher.pc.addTransceiver(media.kind, direction="recvonly")
                transceiver.setCodecPreferences(codec_preferences(media.kind))
        await publisher.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        answer = await publisher.pc.createAnswer()
        await publisher.pc.setLocalDescription(answer)
        self.reply(connection, {"type": "media.answer", "sdp": publisher.pc.localDescription.sdp})

    def _on_track(self, live: LiveRoom, room: MediaRoom, publisher: Publisher, track: Any) -> None:  # noqa: ANN401
        receiver = next((t.receiver for t in publisher.pc.getTransceivers() if t.receiver.track is track), None)
        tap = None
        person_id = publisher.connection.actor.person_id
        publication = Publication(person_id, track.kind, track, receiver)
        publication.muted = track.kind in live.room.media_muted.get(person_id, {})
        publisher.publications.append(publication)
        # A café table's conversation is not captioned (captions go to the whole room) and has no levels.
        if track.kind == "audio" and (live.room.cafe is None or person_id in live.room.stage):
            tap = AudioTap(person_id)
            old = room.taps.get(person_id)
            if old is not None:
                old.close()
            publication.taps.append(tap.feed)
            room.taps[person_id] = tap
            for listener in self.tap_listeners:
                listener(room.session_id, person_id, publisher.connection.actor.name, tap)
            if room.levels_task is None or room.levels_task.done():
                room.levels_task = asyncio.create_task(self._send_levels(room))
        publication.start()
        self._background(self._watch(room, publication, tap))
        self._sync_all(room)

    async def _watch(self, room: MediaRoom, publication: Publication, tap: AudioTap | None) -> None:
        await publication.ended.wait()
        if tap is not None:
            tap.close()
            if room.taps.get(publication.owner) is tap:
                del room.taps[publication.owner]
        self._sync_all(room)

    async def _subscribe(self, live: LiveRoom, connection: Connection, video: bool) -> None:
        room = self._room(live.room.session_id)
        room.state = live.room
        subscriber = room.subscribers.get(connection)
        if subscriber is None:
            self._check_capacity(room)
            pc = RTCPeerConnection(self._configuration())
            subscriber = room.subscribers[connection] = Subscriber(connection, pc, video)
            pc.on("connectionstatechange", lambda: self._on_state(room, connection, pc, "subscribe"))
            self.reply(
                connection, {"type": "media.config", "ice_servers": self.ice_servers(connection.actor.person_id)}
            )
            self._add_slot(subscriber, "audio")  # a connection needs one m-line even before anyone speaks
        subscriber.video = video
        await self._sync(room, subscriber, force_offer=True)

    async def _answer(self, live: LiveRoom, connection: Connection, answer_sdp: str) -> None:
        room = self._room(live.room.session_id)
        subscriber = room.subscribers.get(connection)
        if subscriber is None or not subscriber.negotiating:
            raise MediaError("unexpected_answer", "no offer is waiting for an answer; send media.subscribe first")
        _parse(answer_sdp, "answer")
        async with subscriber.lock:
            await subscriber.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
            subscriber.negotiating = False
            again, subscriber.again = subscriber.again, False
        if again:
            await self._sync(room, subscriber, force_offer=True)

    async def _candidate(self, live: LiveRoom, connection: Connection, message: protocol.IceCandidate) -> None:
        room = self._room(live.room.session_id)
        peer = (room.publishers if message.pc == "publish" else room.subscribers).get(connection)
        if peer is None:
            raise MediaError("no_connection", f"no {message.pc} connection to add a candidate to")
        line = message.candidate.removeprefix("candidate:").strip()
        if not line:
            await peer.pc.addIceCandidate(None)  # end of candidates
            return
        try:
            candidate = candidate_from_sdp(line)
        except Exception:  # aiortc's parser raises ValueError, IndexError or AssertionError
            raise MediaError("invalid", "not an ICE candidate line") from None
        candidate.sdpMid = message.sdp_mid
        candidate.sdpMLineIndex = message.sdp_mline_index
        await peer.pc.addIceCandidate(candidate)

    async def _prefs(self, live: LiveRoom, connection: Connection, video: bool) -> None:
        room = self._room(live.room.session_id)
        subscriber = room.subscribers.get(connection)
        if subscriber is None:
            raise MediaError("no_connection", "send media.subscribe first")
        subscriber.video = video
        await self._sync(room, subscriber)

    def _check_capacity(self, room: MediaRoom) -> None:
        if room.peers() >= MAX_PEERS_PER_ROOM:
            raise MediaError("media_full", "this room's media server is full; captions still work")

    # Subscribers' slots -----------------------------------------------------------------------------

    def _add_slot(self, subscriber: Subscriber, kind: str) -> Slot:
        track = SubscriberTrack(kind)
        transceiver = subscriber.pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences(kind))
        slot = Slot(transceiver, track)
        subscriber.slots.append(slot)
        return slot

    def _sync_all(self, room: MediaRoom) -> None:
        for subscriber in list(room.subscribers.values()):
            self._background(self._sync(room, subscriber))

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("media task failed: %r", task.exception())

    async def _sync(self, room: MediaRoom, subscriber: Subscriber, force_offer: bool = False) -> None:
        """Attach the subscriber's slots to the stage's tracks; offer again only when slots were added."""
        if subscriber.connection not in room.subscribers:
            return
        me = subscriber.connection.actor.person_id
        wanted = [
            pub
            for pub in room.publications()
            if pub.owner != me
            and (pub.kind == "audio" or subscriber.video)
            and (room.state is None or cafe_room.audible(room.state, me, pub.owner))
        ]
        added = False
        for slot in subscriber.slots:
            if slot.track.source is not None and slot.track.source not in wanted:
                slot.track.detach()
        bound = {slot.track.source for slot in subscriber.slots}
        for pub in wanted:
            if pub in bound:
                continue
            slot = next((s for s in subscriber.slots if s.track.source is None and s.track.kind == pub.kind), None)
            if slot is None:
                slot = self._add_slot(subscriber, pub.kind)
                added = True
            slot.track.attach(pub)
        if added or force_offer:
            await self._offer(subscriber)
        elif not subscriber.negotiating:
            self.reply(subscriber.connection, {"type": "media.tracks", "tracks": _tracks(subscriber)})

    async def _offer(self, subscriber: Subscriber) -> None:
        async with subscriber.lock:
            if subscriber.negotiating:
                subscriber.again = True  # offered once the pending answer arrives
                return
            subscriber.negotiating = True
            offer = await subscriber.pc.createOffer()
            await subscriber.pc.setLocalDescription(offer)
            message = {"type": "media.offer", "sdp": subscriber.pc.localDescription.sdp, "tracks": _tracks(subscriber)}
            self.reply(subscriber.connection, message)

    # Room events and departures ---------------------------------------------------------------------

    async def on_events(self, live: LiveRoom, events: list[Event]) -> None:
        """Enforce what the room decided: stage departures stop publishing, mutes drop packets."""
        room = self.rooms.get(live.room.session_id)
        if room is None:
            return
        for event in events:
            if event.kind in {"stage.left", "participant.removed"}:
                person_id = event.data["person_id"]
                if (
                    event.kind == "stage.left"
                    and live.room.cafe is not None
                    and cafe_room.may_publish(live.room, person_id)
                ):
                    continue  # back at their café table, still heard there
                reason = "left the stage" if event.kind == "stage.left" else "removed by a moderator"
                for connection in [c for c in room.publishers if c.actor.person_id == person_id]:
                    await self._close_publisher(room.session_id, connection, reason)
            elif event.kind == "media.muted":
                for publisher in room.publishers.values():
                    if publisher.connection.actor.person_id == event.data["person_id"]:
                        for pub in publisher.publications:
                            if pub.kind == event.data["kind"]:
                                pub.muted = event.data["muted"]
        if live.room.cafe is not None and any(e.kind in CAFE_MEDIA_KINDS for e in events):
            await self._cafe_changed(live, room)

    async def _cafe_changed(self, live: LiveRoom, room: MediaRoom) -> None:
        """Someone changed tables, or a broadcast began or ended: who may speak, and who hears whom."""
        for connection in list(room.publishers):
            if not cafe_room.may_publish(live.room, connection.actor.person_id):
                await self._close_publisher(room.session_id, connection, "left the table")
        self._sync_all(room)

    async def _close_publisher(self, session_id: int, connection: Connection, reason: str) -> None:
        room = self.rooms.get(session_id)
        publisher = room.publishers.pop(connection, None) if room else None
        if room is None or publisher is None:
            return
        for publication in publisher.publications:
            await publication.stop()  # nothing more is forwarded from here on
        self.reply(connection, {"type": "media.stopped", "reason": reason})
        self._sync_all(room)
        self._background(publisher.pc.close())

    async def leave(self, session_id: int, connection: Connection) -> None:
        """A room connection closed: its peer connections go with it."""
        room = self.rooms.get(session_id)
        if room is None:
            return
        await self._close_publisher(session_id, connection, "disconnected")
        subscriber = room.subscribers.pop(connection, None)
        if subscriber is not None:
            for slot in subscriber.slots:
                slot.track.stop()
            await subscriber.pc.close()
        if not room.peers():
            if room.levels_task is not None:
                room.levels_task.cancel()
            self.rooms.pop(session_id, None)

    def _on_state(self, room: MediaRoom, connection: Connection, pc: RTCPeerConnection, which: str) -> None:
        if pc.connectionState == "failed":
            log.info("%s connection of person %s failed", which, connection.actor.person_id)
            if which == "publish":
                self._background(self._close_publisher(room.session_id, connection, "connection failed"))

    async def _send_levels(self, room: MediaRoom) -> None:
        while room.taps or room.last_levels:
            levels = {str(pid): round(tap.level, 1) for pid, tap in room.taps.items()}
            if levels != room.last_levels:
                room.last_levels = levels
                message = {"type": "media.levels", "levels": levels}
                for connection in {*room.subscribers, *room.publishers}:
                    self.reply(connection, message)
            await asyncio.sleep(LEVELS_INTERVAL_S)

    async def stop(self) -> None:
        for session_id, room in list(self.rooms.items()):
            for connection in {*room.publishers, *room.subscribers}:
                with contextlib.suppress(Exception):
                    await self.leave(session_id, connection)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


def _parse(text: str, kind: str) -> sdp.SessionDescription:
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception:
        raise MediaError("invalid", f"the {kind} is not a valid SDP") from None
    if not description.media:
        raise MediaError("invalid", f"the {kind} has no media")
    return description


def _tracks(subscriber: Subscriber) -> list[dict[str, Any]]:
    return [
        {
            "mid": slot.transceiver.mid,
            "kind": slot.track.kind,
            "person_id": slot.track.source.owner if slot.track.source is not None else None,
        }
        for slot in subscriber.slots
    ]
