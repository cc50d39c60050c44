"""The room WebSocket, ``/ws/sessions/{session_id}``: checks Origin and sign-in, reads the role from
the database, then feeds parsed messages to the room service until the socket closes."""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime import protocol
from realtime.fanout import Outbox
from realtime.room import Actor, RoomError
from server.errors import NotFound
from server.rooms.service import CloseCode, RoomService
from server.wsproto import EXTENSION

log = logging.getLogger("forumlive.rooms")

# The first message (hello or resume) must come within this many seconds.
START_TIMEOUT_S = 10
# Clients send a ping every 20 s; a connection silent for this long is dead (keeps attendance honest).
IDLE_TIMEOUT_S = 60
# Signaling messages of one connection waiting for the one before them.
MAX_PENDING_SIGNALS = 64


async def _receive(websocket: WebSocket, timeout_s: float) -> str:
    """The next text frame; a binary frame is treated as malformed text."""
    async with asyncio.timeout(timeout_s):
        message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is not None:
        return message["text"]
    return (message.get("bytes") or b"").decode("utf-8", errors="replace")


async def room_socket(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    if websocket.headers.get("origin") not in settings.effective_origins:
        await websocket.close(CloseCode.POLICY, "origin not allowed")  # refused before the handshake completes
        return
    await websocket.accept()
    person_id = websocket.session.get("person_id")
    service: RoomService = websocket.app.state.rooms
    session_id = int(websocket.path_params["session_id"])
    found = await service.actor_of(person_id, session_id) if isinstance(person_id, int) else None
    if found is None:
        await websocket.close(CloseCode.NOT_SIGNED_IN, "sign in first")
        return
    try:
        live = await service.room(session_id)
    except NotFound:
        await websocket.close(CloseCode.NOT_FOUND, "no such session")
        return
    person, role = found
    actor = Actor(person.id, person.name, role)
    try:
        start = protocol.parse_client(await _receive(websocket, START_TIMEOUT_S))
    except (protocol.ProtocolError, TimeoutError, WebSocketDisconnect):
        start = None
    if not isinstance(start, protocol.Hello | protocol.Resume):
        await websocket.close(CloseCode.BAD_START, "send hello or resume first")
        return
    # Ready-made frames go straight to the socket where the server offers it (server/wsproto.py).
    write_frame = websocket.scope.get("extensions", {}).get(EXTENSION)
    outbox = Outbox(websocket.send_text, websocket.close, write_frame=write_frame)
    try:
        # The visit's channel: "lite" through the lite socket (server/lite.py), else "live".
        connection = await service.join(live, actor, outbox, start, getattr(websocket, "attendance_channel", "live"))
    except RoomError as exc:
        code = {
            "too_many_connections": CloseCode.TOO_MANY_CONNECTIONS,
            "room_unavailable": CloseCode.TRY_AGAIN,
        }.get(exc.code, CloseCode.FORBIDDEN)
        await websocket.close(code, f"{exc.code}: {exc.message}"[:120])
        return
    try:
        await _serve(websocket, service, live, connection)
    finally:
        await service.leave(live, connection)


async def _serve(websocket: WebSocket, service: RoomService, live, connection) -> None:  # noqa: ANN001
    # WebRTC signaling can take a while (ICE gathering, DTLS setup): it runs beside the room commands, in
    # order among itself, so that a chat line or a moderator's switch never waits behind an offer.
    signals: asyncio.Queue[protocol.MediaSignal] = asyncio.Queue(MAX_PENDING_SIGNALS)

    async def signaling() -> None:
        while True:
            message = await signals.get()
            await service.media.handle(live, connection, message)

    worker = asyncio.create_task(signaling())
    try:
        await _read(websocket, service, live, connection, signals)
    finally:
        worker.cancel()


async def _read(websocket: WebSocket, service: RoomService, live, connection, signals) -> None:  # noqa: ANN001
    while not connection.outbox.closed:
        try:
            raw = await _receive(websocket, IDLE_TIMEOUT_S)
        except WebSocketDisconnect:
            return
        except TimeoutError:
            await connection.outbox.close(CloseCode.IDLE, "no heartbeat")
            return
        try:
            message = protocol.parse_client(raw)
        except protocol.ProtocolError as exc:
            if exc.code == "too_large":
                await connection.outbox.close(CloseCode.TOO_BIG, exc.message[:120])
                return
            service.reply(connection, protocol.error(exc.code, exc.message, exc.ref))
            continue
        if isinstance(message, protocol.Ping):
            service.reply(connection, protocol.PONG)
        elif isinstance(message, protocol.MediaSignal):
            wait = connection.limits.take(message.type)
            if wait:
                service.reply(
                    connection,
                    protocol.error("rate_limited", f"too fast; try again in {wait:.1f} s", message.ref, wait),
                )
            elif signals.full():
                service.reply(connection, protocol.error("rate_limited", "too many signaling messages", message.ref))
            else:
                signals.put_nowait(message)
        elif isinstance(message, protocol.Hello | protocol.Resume):
            service.reply(
                connection, protocol.error("already_started", "hello/resume only as the first message", message.ref)
            )
        else:
            await service.handle(live, connection, message)
