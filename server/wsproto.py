"""uvicorn's WebSocket protocol with one addition: a room's frames written as ready-made bytes.

A room sends each event to thousands of connections, and every connection of a viewer class gets the
same text. The standard ASGI path frames it again for every connection (websockets' frame building,
an awaited ``send`` through Starlette and uvicorn). A server's frames are not masked, so the bytes of
a frame are the same for every connection: ``FrameWriter`` offers, as the ASGI extension
``forumlive.frames``, a call that writes such bytes to the socket at once and says whether it could
(not while the socket's buffer is full, before the handshake, or after a close; the caller then takes
the ordinary path, which waits). Only with per-message compression off (``forumlive serve`` turns it
off): compressed frames differ from one connection to the next.

This reaches into uvicorn's ``WebSocketsSansIOProtocol`` (``handle_connect``, ``scope``,
``transport``, ``writable``, ``handshake_complete``, ``close_sent``); ``tests/server/test_wsproto.py``
checks them, so an upgrade that changes them fails there by name.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION = "forumlive.frames"
# The class as uvicorn's ``ws`` setting names it.
PROTOCOL = "server.wsproto:FrameWriter"


class HandshakeLines(logging.Filter):
    """Drops uvicorn's line per WebSocket handshake (``'... - "WebSocket /path" [accepted]'``, or its 403).

    uvicorn writes these on its error logger at INFO whatever its ``access_log`` says; with the access
    log off (``FORUMLIVE_ACCESS_LOG=0``) they go too, and an audience of thousands joining writes no
    line each. Errors on that logger still pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket %s"'))


HANDSHAKE_LINES = HandshakeLines()


class FrameWriter(WebSocketsSansIOProtocol):
    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - uvicorn's own
        super().__init__(config, *args, **kwargs)
        if not config.access_log:
            self.logger.addFilter(HANDSHAKE_LINES)  # once per logger: addFilter skips one it holds

    def handle_connect(self, event: Any) -> None:  # noqa: ANN401 - websockets' Request
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.config.ws_per_message_deflate:
            scope["extensions"][EXTENSION] = self.write_frame

    def write_frame(self, frame: bytes) -> bool:
        """Write a whole frame built by ``realtime.fanout.text_frame``; ``False``: not now, use ``send``."""
        if not self.handshake_complete or self.close_sent or not self.writable.is_set() or self.transport.is_closing():
            return False
        self.transport.write(frame)
        return True
