"""Ready-made frames (server/wsproto.py): the bytes are a valid WebSocket frame, and uvicorn's protocol
offers the extension and writes them in order with the frames it builds itself."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from realtime.fanout import text_frame
from server.wsproto import EXTENSION, HANDSHAKE_LINES, PROTOCOL, FrameWriter


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536, 70_000])
def test_text_frame_parses_as_one_final_text_frame(size: int) -> None:
    text = "é" * size if size < 300 else "x" * size  # two bytes a character below 300
    reader = StreamReader()
    reader.feed_data(text_frame(text))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:  # pragma: no cover - the parser wanted more bytes than the frame has
        pytest.fail("incomplete frame")
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data.decode() == text
    assert not reader.buffer  # nothing left over: exactly one frame


def test_the_protocol_uvicorn_is_given_is_this_one() -> None:
    module, _, name = PROTOCOL.partition(":")
    assert (module, name) == (FrameWriter.__module__, FrameWriter.__name__)
    # What FrameWriter relies on in uvicorn's class (an upgrade that renames them fails here).
    assert callable(getattr(FrameWriter, "handle_connect", None))
    source = __import__("inspect").getsource(FrameWriter.__mro__[1])
    for attribute in ("self.scope", "self.transport", "self.writable", "self.handshake_complete", "self.close_sent"):
        assert attribute in source, attribute


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_frames_written_ready_made_arrive_in_order_with_ordinary_ones() -> None:
    results: dict[str, object] = {}

    async def app(scope, receive, send) -> None:  # noqa: ANN001 - a bare ASGI app
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        write = scope["extensions"].get(EXTENSION)
        results["offered"] = write is not None
        results["before_accept"] = write(text_frame("too early")) if write else None
        await send({"type": "websocket.accept"})
        results["written"] = [write(text_frame(f"ready {i}")) for i in range(3)]
        await send({"type": "websocket.send", "text": "ordinary"})
        write(text_frame("last " + "z" * 70_000))
        await receive()  # the client closes
        results["after_close"] = write(text_frame("too late"))

    async def main() -> list[str]:
        port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=PROTOCOL, ws_per_message_deflate=False)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                got = [await ws.recv() for _ in range(5)]
            await asyncio.sleep(0.2)
            return got
        finally:
            server.should_exit = True
            await task

    got = asyncio.run(main())
    assert got[:4] == ["ready 0", "ready 1", "ready 2", "ordinary"] and got[4] == "last " + "z" * 70_000
    assert results["offered"] is True
    assert results["before_accept"] is False and results["written"] == [True, True, True]
    assert results["after_close"] is False


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("access_log", [True, False])
def test_handshake_lines_follow_the_access_log(access_log: bool) -> None:
    """FORUMLIVE_ACCESS_LOG=0 (uvicorn's access_log=False) silences the line per WebSocket handshake, accepted
    or refused, which uvicorn writes on its error logger; an error on that logger still gets through."""

    async def app(scope, receive, send) -> None:  # noqa: ANN001 - a bare ASGI app
        if scope["type"] != "websocket":
            return
        await receive()
        if scope["path"] == "/refused":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        await receive()

    async def main() -> None:
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, ws=PROTOCOL, access_log=access_log, log_config=None, log_level="info"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with connect(f"ws://127.0.0.1:{port}/room", compression=None):
                pass
            with pytest.raises(Exception, match="403"):
                async with connect(f"ws://127.0.0.1:{port}/refused", compression=None):
                    pass
            logging.getLogger("uvicorn.error").error("a real error")
        finally:
            server.should_exit = True
            await task

    logger = logging.getLogger("uvicorn.error")
    lines = _Lines()
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        asyncio.run(main())
    finally:
        logger.removeHandler(lines)
        logger.removeFilter(HANDSHAKE_LINES)  # a process keeps it; the next test starts without it
        logger.setLevel(level)
    handshakes = [line for line in lines.lines if '"WebSocket /' in line]
    if access_log:
        assert any("/room" in line and "accepted" in line for line in handshakes), lines.lines
        assert any("/refused" in line and "403" in line for line in handshakes), lines.lines
    else:
        assert handshakes == []
    assert "a real error" in lines.lines
