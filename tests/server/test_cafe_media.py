"""Per-table audio in a knowledge café, end to end with real aiortc peers on loopback: a listener hears
only the speakers at their own table, every table hears a moderator's broadcast, and moving tables
moves what one hears. (The relay itself is tested in test_media.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from realtime import protocol as p
from realtime.log import Event
from realtime.media import hooks
from realtime.room import Actor, Role, Room, RoomSettings, RoomState
from tests.server.media_peers import MediaPeers

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech"
ANA = Actor(1, "Ana at table 1", Role.PARTICIPANT)
BEN = Actor(2, "Ben at table 2", Role.PARTICIPANT)
LEE = Actor(3, "Lee listening at table 1", Role.PARTICIPANT)
MO = Actor(4, "Mo Moderator", Role.MODERATOR)
VOICES = {ANA.person_id: "libri_0870.wav", BEN.person_id: "libri_0880.wav", MO.person_id: "jfk.wav"}


class Cafe(MediaPeers):
    """A café room with two tables, the real media service, and aiortc peers standing in for browsers."""

    def __init__(self) -> None:
        super().__init__(Room(9, RoomSettings(state=RoomState.LIVE), cafe=True), (ANA, BEN, LEE, MO))
        self.heard: dict[int, list[bytes]] = defaultdict(list)  # what the server received from each speaker
        for actor in (ANA, BEN, LEE, MO):
            self.room.connect(actor)
        for i in (1, 2):
            table = {"id": i, "topic": f"Table {i}", "seats": 4, "host_id": None}
            self.room.apply([Event("cafe.table.added", {"table": table})])

    async def run(self, actor: Actor, command: dict[str, Any]) -> None:
        events = self.room.decide(actor, p.parse_client(json.dumps(command)), 1.0)
        await self.media.on_events(self.live, self.room.apply(events))

    async def publish(self, actor: Actor) -> None:
        pc = self.peer()
        pc.addTrack(MediaPlayer(str(SPEECH / VOICES[actor.person_id]), loop=True).audio)  # Ben speaks 3 s
        await pc.setLocalDescription(await pc.createOffer())
        connection = self.connections[actor.person_id]
        await self.media.handle(
            self.live, connection, p.PublishMedia(type="media.publish", sdp=pc.localDescription.sdp)
        )
        answer = await self.next(actor.person_id, "media.answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        async with asyncio.timeout(10):
            while not [pub for pub in self.media.rooms[9].publications() if pub.owner == actor.person_id]:
                await asyncio.sleep(0.05)
        for pub in self.media.rooms[9].publications():
            if pub.owner == actor.person_id:
                pub.taps.append(lambda packet, who=actor.person_id: self.heard[who].append(bytes(packet)))


@pytest.fixture
async def cafe() -> AsyncIterator[Cafe]:
    c = Cafe()
    yield c
    await c.close()
    hooks.limit_host_addresses(None)


async def _packets(tracks: list[Any], seconds: float) -> list[bytes]:
    """Every packet received on any of the tracks within ``seconds``."""
    received: list[bytes] = []

    async def read(track: Any) -> None:  # noqa: ANN401
        with contextlib.suppress(Exception):
            while True:
                received.append(bytes(await track.recv()))

    readers = [asyncio.create_task(read(t)) for t in tracks]
    await asyncio.sleep(seconds)
    for reader in readers:
        reader.cancel()
    return received


def _from(cafe: Cafe, person_id: int, packets: list[bytes]) -> int:
    sent = set(cafe.heard[person_id])
    return sum(1 for packet in packets if packet in sent)


async def test_a_listener_hears_only_their_table_and_the_broadcast(cafe: Cafe) -> None:
    """Lee at table 1 receives Ana (table 1), never Ben (table 2); Mo's broadcast reaches Lee; Lee's move to
    table 2 switches him to Ben."""
    for actor, table in ((ANA, 1), (BEN, 2), (LEE, 1)):
        await cafe.run(actor, {"type": "cafe.join", "table_id": table})
    await cafe.publish(ANA)
    await cafe.publish(BEN)
    lee, tracks = await cafe.subscribe(LEE)
    async with asyncio.timeout(10):
        while not tracks:
            await asyncio.sleep(0.05)
    await _packets(tracks, 0.5)  # let the first packets through
    received = await _packets(tracks, 2.0)
    assert _from(cafe, ANA.person_id, received) > 50, "Ana's speech reaches her table"
    assert len(cafe.heard[BEN.person_id]) > 50, "Ben is speaking meanwhile"
    assert _from(cafe, BEN.person_id, received) == 0, "nothing of table 2 reaches table 1"

    # A moderator's broadcast: every table hears it.
    await cafe.run(MO, {"type": "cafe.broadcast", "on": True})
    await cafe.publish(MO)
    await cafe.answer(lee, LEE)  # a slot is added for the broadcast: the server offers again
    async with asyncio.timeout(10):
        while len(tracks) < 2:
            await asyncio.sleep(0.05)
    await _packets(tracks, 0.5)
    received = await _packets(tracks, 2.0)
    assert _from(cafe, MO.person_id, received) > 50 and _from(cafe, BEN.person_id, received) == 0

    # Lee moves to table 2: Ben now, Ana no more.
    await cafe.run(LEE, {"type": "cafe.join", "table_id": 2})
    await _packets(tracks, 0.5)
    received = await _packets(tracks, 2.0)
    assert _from(cafe, BEN.person_id, received) > 50
    assert _from(cafe, ANA.person_id, received) == 0


async def test_only_people_at_a_table_or_on_stage_may_publish(cafe: Cafe) -> None:
    """Someone at no table gets not_on_stage; leaving one's table stops one's microphone."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    cafe.peers.append(pc)
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await cafe.media.handle(
        cafe.live, cafe.connections[LEE.person_id], p.PublishMedia(type="media.publish", sdp=pc.localDescription.sdp)
    )
    reply = await cafe.inbox[LEE.person_id].get()
    assert reply["type"] == "error" and reply["code"] == "not_on_stage"
    await cafe.run(ANA, {"type": "cafe.join", "table_id": 1})
    await cafe.publish(ANA)
    await cafe.run(ANA, {"type": "cafe.leave"})
    assert (await cafe.next(ANA.person_id, "media.stopped"))["reason"] == "left the table"
    assert cafe.media.rooms[9].publications() == []
