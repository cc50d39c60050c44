"""The media service with real aiortc peers on loopback: publish, subscribe, pass-through, tap, mute, stage.

The server side is the real ``MediaService`` on a real ``Room``; the browsers are aiortc peer
connections in the same event loop, sending speech from a WAV file (aiortc encodes it to Opus).
Signaling goes through ``MediaService.handle`` as the room socket would hand it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from realtime import protocol as p
from realtime.log import Event
from realtime.media import hooks
from realtime.media.tap import SAMPLE_RATE, AudioTap, PcmChunk
from realtime.room import Actor, Role, Room
from server.rooms.media import turn_credentials
from tests.server.media_peers import MediaPeers

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "libri_0870.wav"
SPEAKER = Actor(1, "Ana Speaker", Role.SPEAKER)
LISTENER = Actor(2, "Lee Listener", Role.PARTICIPANT)
MODERATOR = Actor(3, "Mo Moderator", Role.MODERATOR)


class Harness(MediaPeers):
    def __init__(self) -> None:
        super().__init__(Room(7), (SPEAKER, LISTENER))
        self.taps: list[AudioTap] = []
        self.media.tap_listeners.append(lambda session_id, person_id, name, tap: self.taps.append(tap))

    def apply(self, *events: Event) -> list[Event]:
        return self.room.apply(list(events))

    async def publish(self, actor: Actor = SPEAKER) -> tuple[RTCPeerConnection, MediaPlayer]:
        pc = self.peer()
        player = MediaPlayer(str(SPEECH))
        pc.addTrack(player.audio)
        await pc.setLocalDescription(await pc.createOffer())
        await self.media.handle(
            self.live,
            self.connections[actor.person_id],
            p.PublishMedia(type="media.publish", sdp=pc.localDescription.sdp),
        )
        answer = await self.next(actor.person_id, "media.answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return pc, player

    async def subscribe(self, actor: Actor = LISTENER) -> tuple[RTCPeerConnection, list[Any]]:
        return await super().subscribe(actor)

    async def answer(self, pc: RTCPeerConnection, actor: Actor = LISTENER) -> dict[str, Any]:
        return await super().answer(pc, actor)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    h.apply(Event("stage.joined", {"person_id": SPEAKER.person_id, "name": SPEAKER.name}))
    yield h
    await h.close()
    hooks.limit_host_addresses(None)


async def _count_packets(track: Any, seconds: float) -> list[bytes]:  # noqa: ANN401
    received: list[bytes] = []
    with contextlib.suppress(TimeoutError, Exception):
        async with asyncio.timeout(seconds):
            while True:
                received.append(bytes(await track.recv()))
    return received


async def _record(tap: AudioTap, seconds: float) -> list[PcmChunk]:
    chunks: list[PcmChunk] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for chunk in tap.stream():
                chunks.append(chunk)
    return chunks


async def test_speech_is_relayed_as_the_same_encoded_packets_and_tapped_once(harness: Harness) -> None:
    await harness.publish()
    _, tracks = await harness.subscribe()
    async with asyncio.timeout(10):
        while not tracks:
            await asyncio.sleep(0.05)
    assert [t.kind for t in tracks] == ["audio"]
    assert len(harness.taps) == 1, "one tap per speaker, whatever the number of listeners"
    seen_by_server: list[bytes] = []
    publication = harness.media.rooms[7].publications()[0]
    publication.taps.append(lambda packet: seen_by_server.append(bytes(packet)))
    recording = asyncio.create_task(_record(harness.taps[0], 3.0))
    received = await _count_packets(tracks[0], 3.0)
    chunks = await recording
    # Opus at 20 ms: about 50 packets a second, and exactly the bytes the server received.
    assert len(received) > 100
    assert set(received[5:-5]) <= set(seen_by_server)
    pcm = np.concatenate([c.samples for c in chunks])
    assert pcm.dtype == np.int16
    assert 2.0 < len(pcm) / SAMPLE_RATE < 3.5
    assert np.abs(pcm).max() > 1000, "the tap decoded speech, not silence"
    assert chunks[-1].start_s > chunks[0].start_s


async def test_tap_pcm_follows_the_input_envelope(harness: Harness) -> None:
    listener_tap: list[PcmChunk] = []
    harness.media.tap_listeners.append(
        lambda s, pid, name, tap: asyncio.ensure_future(_record(tap, 9.0)).add_done_callback(
            lambda f: listener_tap.extend(f.result())
        )
    )
    await harness.publish()
    async with asyncio.timeout(12):
        while not listener_tap:
            await asyncio.sleep(0.2)
    tapped = np.concatenate([c.samples for c in listener_tap]).astype(np.float32)
    with wave.open(str(SPEECH)) as w:
        source = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
    duration = len(source) / SAMPLE_RATE
    assert abs(len(tapped) / SAMPLE_RATE - duration) < 0.6
    assert _envelope_correlation(source, tapped) >= 0.9


def _envelope(samples: np.ndarray, window: int = 1600) -> np.ndarray:
    frames = len(samples) // window
    return np.sqrt(np.mean(np.square(samples[: frames * window].reshape(frames, window)), axis=1))


def _envelope_correlation(source: np.ndarray, received: np.ndarray) -> float:
    """Best Pearson correlation of 100 ms RMS envelopes over shifts of up to ±1 s."""
    a, b = _envelope(source), _envelope(received)
    best = -1.0
    for shift in range(-10, 11):
        x, y = (a[shift:], b) if shift >= 0 else (a, b[-shift:])
        n = min(len(x), len(y))
        if n > 20:
            best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


async def test_moderator_mute_drops_packets_on_the_server(harness: Harness) -> None:
    await harness.publish()
    _, tracks = await harness.subscribe()
    async with asyncio.timeout(10):
        while not tracks:
            await asyncio.sleep(0.05)
    assert len(await _count_packets(tracks[0], 1.0)) > 20
    events = harness.room.decide(MODERATOR, p.MuteMedia(type="media.mute", kind="audio", muted=True, person_id=1), 0.0)
    await harness.media.on_events(harness.live, harness.apply(*events))
    await _count_packets(tracks[0], 0.3)  # drain what was already queued
    assert await _count_packets(tracks[0], 1.0) == []
    publication = harness.media.rooms[7].publications()[0]
    assert publication.packets_dropped_muted > 20
    # The speaker may not lift a moderator's mute; the moderator can.
    with pytest.raises(Exception, match="moderator muted you"):
        harness.room.decide(SPEAKER, p.MuteMedia(type="media.mute", kind="audio", muted=False), 0.0)
    events = harness.room.decide(MODERATOR, p.MuteMedia(type="media.mute", kind="audio", muted=False, person_id=1), 0.0)
    await harness.media.on_events(harness.live, harness.apply(*events))
    assert await _count_packets(tracks[0], 1.0) == [], "allowed, but still muted until the speaker unmutes"
    events = harness.room.decide(SPEAKER, p.MuteMedia(type="media.mute", kind="audio", muted=False), 0.0)
    await harness.media.on_events(harness.live, harness.apply(*events))
    assert len(await _count_packets(tracks[0], 1.0)) > 20


@pytest.mark.parametrize(
    ("kind", "reason"), [("stage.left", "left the stage"), ("participant.removed", "removed by a moderator")]
)
async def test_leaving_the_stage_stops_publishing_at_once(harness: Harness, kind: str, reason: str) -> None:
    await harness.publish()
    _, tracks = await harness.subscribe()
    async with asyncio.timeout(10):
        while not tracks:
            await asyncio.sleep(0.05)
    await _count_packets(tracks[0], 0.5)
    await harness.media.on_events(harness.live, harness.apply(Event(kind, {"person_id": 1})))
    stopped = await harness.next(SPEAKER.person_id, "media.stopped")
    assert stopped["reason"] == reason
    tracks_msg = await harness.next(LISTENER.person_id, "media.tracks")
    assert all(t["person_id"] is None for t in tracks_msg["tracks"])
    await _count_packets(tracks[0], 0.2)
    assert await _count_packets(tracks[0], 1.0) == []
    assert harness.media.rooms[7].publications() == []


async def test_a_participant_off_stage_cannot_publish(harness: Harness) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    harness.peers.append(pc)
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    message = p.PublishMedia(type="media.publish", sdp=pc.localDescription.sdp, ref="r1")
    await harness.media.handle(harness.live, harness.connections[LISTENER.person_id], message)
    reply = await harness.inbox[LISTENER.person_id].get()
    assert reply["type"] == "error" and reply["code"] == "not_on_stage" and reply["ref"] == "r1"
    assert harness.media.rooms.get(7) is None or not harness.media.rooms[7].publishers


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (p.PublishMedia(type="media.publish", sdp="v=0\r\nnot an sdp"), "invalid"),
        (p.AnswerMedia(type="media.answer", sdp="v=0\r\n"), "unexpected_answer"),
        (
            p.IceCandidate(type="media.ice", pc="subscribe", candidate="candidate:1 1 udp 1 127.0.0.1 9 typ host"),
            "no_connection",
        ),
        (p.MediaPrefs(type="media.prefs", video=False), "no_connection"),
    ],
)
async def test_bad_signaling_gets_a_clear_error(harness: Harness, message: p.MediaSignal, code: str) -> None:
    await harness.media.handle(harness.live, harness.connections[SPEAKER.person_id], message)
    reply = await harness.inbox[SPEAKER.person_id].get()
    assert reply["type"] == "error" and reply["code"] == code


async def test_a_bad_candidate_line_is_refused(harness: Harness) -> None:
    await harness.subscribe()
    bad = p.IceCandidate(type="media.ice", pc="subscribe", candidate="candidate:garbage")
    await harness.media.handle(harness.live, harness.connections[LISTENER.person_id], bad)
    reply = await _first_error(harness, LISTENER)
    assert reply["code"] == "invalid"


async def _first_error(harness: Harness, actor: Actor) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message = await harness.inbox[actor.person_id].get()
            if message["type"] == "error":
                return message


def test_turn_credentials_follow_coturns_rest_scheme() -> None:
    import base64
    import hashlib
    import hmac

    username, credential = turn_credentials("s3cret", "42", 600, now=1_000_000)
    assert username == "1000600:42"
    assert credential == base64.b64encode(hmac.new(b"s3cret", b"1000600:42", hashlib.sha1).digest()).decode()


async def _publish_video(harness: Harness) -> RTCPeerConnection:
    from aiortc import VideoStreamTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    harness.peers.append(pc)
    pc.addTrack(MediaPlayer(str(SPEECH)).audio)
    pc.addTrack(VideoStreamTrack())  # 640x480 at 30 fps, VP8-encoded by aiortc with a keyframe only at the start
    await pc.setLocalDescription(await pc.createOffer())
    message = p.PublishMedia(type="media.publish", sdp=pc.localDescription.sdp)
    await harness.media.handle(harness.live, harness.connections[SPEAKER.person_id], message)
    answer = await harness.next(SPEAKER.person_id, "media.answer")
    assert "VP8" in answer["sdp"] and "H264" not in answer["sdp"], "codec pinned to VP8"
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return pc


async def test_a_late_video_subscriber_starts_at_a_keyframe_requested_from_the_publisher(harness: Harness) -> None:
    from realtime.media.keyframes import is_vp8_keyframe

    await _publish_video(harness)
    async with asyncio.timeout(10):
        while len(harness.media.rooms[7].publications()) < 2:
            await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # the publisher's only spontaneous keyframe is long gone
    video = next(pub for pub in harness.media.rooms[7].publications() if pub.kind == "video")
    assert video.packets_in > 20
    _, tracks = await harness.subscribe()
    async with asyncio.timeout(10):
        while len(tracks) < 2:
            await asyncio.sleep(0.05)
    received = await _count_packets(next(t for t in tracks if t.kind == "video"), 2.0)
    assert len(received) > 15, "video flows to the late subscriber"
    assert is_vp8_keyframe(received[0]), "and starts at a keyframe"
    assert video.keyframes.sent >= 1


async def test_audio_only_listeners_get_no_video_until_they_ask(harness: Harness) -> None:
    await _publish_video(harness)
    async with asyncio.timeout(10):
        while len(harness.media.rooms[7].publications()) < 2:
            await asyncio.sleep(0.05)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    harness.peers.append(pc)
    connection = harness.connections[LISTENER.person_id]
    await harness.media.handle(harness.live, connection, p.SubscribeMedia(type="media.subscribe", video=False))
    offer = await harness.answer(pc)
    assert [t["kind"] for t in offer["tracks"]] == ["audio"]
    await harness.media.handle(harness.live, connection, p.MediaPrefs(type="media.prefs", video=True))
    offer = await harness.answer(pc)
    assert sorted((t["kind"], t["person_id"]) for t in offer["tracks"]) == [("audio", 1), ("video", 1)]
    await harness.media.handle(harness.live, connection, p.MediaPrefs(type="media.prefs", video=False))
    tracks = await harness.next(LISTENER.person_id, "media.tracks")
    assert {(t["kind"], t["person_id"]) for t in tracks["tracks"]} == {("audio", 1), ("video", None)}


async def test_levels_follow_the_speaker_and_fall_to_zero_when_muted(harness: Harness) -> None:
    await harness.publish()
    await harness.subscribe()
    loud = await harness.next(LISTENER.person_id, "media.levels")
    while loud["levels"].get("1", 0) < 0.3:
        loud = await harness.next(LISTENER.person_id, "media.levels")
    events = harness.room.decide(MODERATOR, p.MuteMedia(type="media.mute", kind="audio", muted=True, person_id=1), 0.0)
    await harness.media.on_events(harness.live, harness.apply(*events))
    quiet = await harness.next(LISTENER.person_id, "media.levels")
    while quiet["levels"].get("1") != 0.0:
        quiet = await harness.next(LISTENER.person_id, "media.levels")


async def test_a_publisher_adds_the_camera_by_renegotiating(harness: Harness) -> None:
    from aiortc import VideoStreamTrack

    pc, _ = await harness.publish()
    async with asyncio.timeout(10):
        while len(harness.media.rooms[7].publications()) < 1:
            await asyncio.sleep(0.05)
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    message = p.PublishMedia(type="media.publish", sdp=pc.localDescription.sdp)
    await harness.media.handle(harness.live, harness.connections[SPEAKER.person_id], message)
    answer = await harness.next(SPEAKER.person_id, "media.answer")
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    async with asyncio.timeout(10):
        while sorted(pub.kind for pub in harness.media.rooms[7].publications()) != ["audio", "video"]:
            await asyncio.sleep(0.05)
    video = next(pub for pub in harness.media.rooms[7].publications() if pub.kind == "video")
    async with asyncio.timeout(10):
        while video.packets_in < 10:
            await asyncio.sleep(0.05)


def test_an_oversized_sdp_is_refused_by_the_parser() -> None:
    raw = json.dumps({"type": "media.publish", "sdp": "v=0\r\n" + "a=x\r\n" * 7000})
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client(raw)
    assert info.value.code == "invalid" and "sdp" in info.value.message
