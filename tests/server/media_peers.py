"""aiortc peers standing in for browsers on one room's real MediaService, signalling through
``MediaService.handle`` as the room socket would hand it over (shared by the media and café media tests)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from realtime import protocol as p
from realtime.fanout import Outbox
from realtime.room import Actor, Room
from server.rooms.media import MediaService
from server.rooms.service import Connection, LiveRoom
from server.settings import Settings


async def _nothing(*_: Any) -> None:
    return None


class MediaPeers:
    """The room, its media service on loopback (no public ICE servers), a connection per person, their inboxes."""

    def __init__(self, room: Room, people: tuple[Actor, ...]) -> None:
        self.room = room
        self.live = LiveRoom(room)
        self.inbox: dict[int, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        settings = Settings(ice_host_addresses=("127.0.0.1",))
        self.media = MediaService(settings, lambda c, m: self.inbox[c.actor.person_id].put_nowait(m))
        self.connections = {a.person_id: Connection(a, Outbox(_nothing, _nothing), 0) for a in people}
        self.peers: list[RTCPeerConnection] = []

    def peer(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.append(pc)
        return pc

    async def next(self, person_id: int, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next message of ``kind`` to this person (an error on the way fails the test)."""
        async with asyncio.timeout(timeout_s):
            while True:
                message = await self.inbox[person_id].get()
                if message["type"] == kind:
                    return message
                if message["type"] == "error":
                    raise AssertionError(message)

    async def subscribe(self, actor: Actor) -> tuple[RTCPeerConnection, list[Any]]:
        pc = self.peer()
        tracks: list[Any] = []
        pc.on("track", tracks.append)
        await self.media.handle(self.live, self.connections[actor.person_id], p.SubscribeMedia(type="media.subscribe"))
        config = await self.next(actor.person_id, "media.config")
        assert config["ice_servers"] == []  # nothing public unless configured
        await self.answer(pc, actor)
        return pc, tracks

    async def answer(self, pc: RTCPeerConnection, actor: Actor) -> dict[str, Any]:
        offer = await self.next(actor.person_id, "media.offer")
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        connection = self.connections[actor.person_id]
        await self.media.handle(self.live, connection, p.AnswerMedia(type="media.answer", sdp=pc.localDescription.sdp))
        return offer

    async def close(self) -> None:
        for connection in self.connections.values():
            await self.media.leave(self.room.session_id, connection)
        for pc in self.peers:
            await pc.close()
        await self.media.stop()
