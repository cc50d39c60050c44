"""The application factory: ``create_app(settings)`` builds everything a running server holds.

No module-level state: the database handle, templates and settings hang off ``app.state``.
Errors from the domain (``server.errors``) become JSON under ``/api`` and error pages elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
from base64 import b64decode
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import itsdangerous
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from captioning.processor import CaptionOptions
from server import api, metrics, pages
from server.captions import CaptionService
from server.errors import ForumliveError, TooManyRequests
from server.ratelimit import SIGNIN_FAILURES, SIGNIN_WINDOW_S, AttemptLimiter, RedisAttemptLimiter
from server.recording import AudioRecorder
from server.rooms.endpoint import room_socket
from server.rooms.service import RoomService
from server.rooms.shared import SharedRoomService
from server.settings import Settings, load_settings
from server.storage import migrate
from server.storage.db import Database
from web import STATIC_DIR

log = logging.getLogger("forumlive")

SESSION_COOKIE = "forumlive_session"
# Pages load only their own scripts and styles; nothing may frame them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeaders:
    """Adds CSP, nosniff, referrer and framing headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


ROOM_SOCKET = re.compile(r"^/ws/sessions/(\d+)$")


class RoomSockets:
    """Sends room WebSockets straight to their endpoint, past the HTTP middleware and router.

    Every frame a room sends passes back through each layer it came through; with thousands of
    viewers the session and exception middlewares' send wrappers cost about 15% of the server's
    CPU (``bench/fanout``) for nothing: a socket needs the signed session only once, to know who
    connected, and that is read here exactly as ``SessionMiddleware`` reads it.
    """

    def __init__(self, app: ASGIApp, secret_key: str, max_age_s: int) -> None:
        self.app = app
        self.signer = itsdangerous.TimestampSigner(secret_key)
        self.max_age_s = max_age_s

    def _session(self, scope: Scope) -> dict[str, object]:
        raw = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        if not raw:
            return {}
        try:
            return json.loads(b64decode(self.signer.unsign(raw.encode(), max_age=self.max_age_s)))
        except (itsdangerous.BadSignature, ValueError):
            return {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = ROOM_SOCKET.match(scope.get("path", "")) if scope["type"] == "websocket" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["session"] = self._session(scope)
        scope["path_params"] = {"session_id": int(match.group(1))}
        await room_socket(WebSocket(scope, receive=receive, send=send))


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ForumliveError)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequests) else None
    if _wants_json(request):
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)
    response = pages.error_page(request, exc.status, exc.message)
    response.headers.update(headers or {})
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    if _wants_json(request):
        body = {"error": {"code": f"http_{exc.status_code}", "message": message, "fields": []}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
    return pages.error_page(request, exc.status_code, message)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "internal error; nothing was changed"
    if _wants_json(request):
        return JSONResponse({"error": {"code": "internal", "message": message, "fields": []}}, status_code=500)
    return pages.error_page(request, 500, message)


def create_app(settings: Settings, *, migrate_on_start: bool = True) -> Starlette:
    """Build the ASGI app. Database migrations run at start-up unless told otherwise."""
    database = Database(settings.effective_database_url)

    rooms = SharedRoomService(database, settings) if settings.redis_url else RoomService(database, settings)
    signin_limiter = (
        RedisAttemptLimiter(settings.redis_url, SIGNIN_FAILURES, SIGNIN_WINDOW_S)
        if settings.redis_url
        else AttemptLimiter(SIGNIN_FAILURES, SIGNIN_WINDOW_S)
    )
    captions = CaptionService(
        rooms,
        settings.captions_model,
        engine=settings.captions_engine,
        models_dir=settings.data_dir / "models",
        workers=settings.captions_workers,
        batch=settings.captions_batch,
        translate=settings.captions_translate,
        options=CaptionOptions(step_s=settings.captions_step_s, beam_size=settings.captions_beam),
    )
    if settings.live_captions:
        rooms.media.tap_listeners.append(captions.listen)
    if settings.record_audio:
        rooms.media.tap_listeners.append(AudioRecorder(settings.data_dir / "recordings"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if migrate_on_start:
            migrate.upgrade(database.engine)
        await rooms.start()
        yield
        await captions.stop()
        await rooms.stop()
        await signin_limiter.close()
        database.dispose()

    routes = [
        *api.routes(),
        Route("/api/openapi.json", api.openapi_document, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        *pages.routes(),
        # Scripts, styles and catalogues go gzipped to browsers that ask (about a third of the bytes: it matters on
        # the lite page's poor connections). Pages are not: they carry CSRF tokens beside text from the request,
        # which compression would let an eavesdropper guess (BREACH).
        Mount("/static", app=GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=512), name="static"),
    ]
    middleware = [
        Middleware(RoomSockets, secret_key=settings.secret_key, max_age_s=settings.session_max_age_s),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=settings.session_max_age_s,
            same_site="lax",
            https_only=settings.secure_cookies,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={ForumliveError: domain_error, HTTPException: http_error, Exception: server_error},
    )
    app.state.settings = settings
    app.state.db = database
    app.state.rooms = rooms
    app.state.captions = captions
    app.state.templates = pages.make_templates(settings)
    app.state.signin_limiter = signin_limiter
    return app


def worker_app() -> Starlette:
    """The app of one process of ``forumlive serve --workers N``: settings from the environment that command
    prepared; it has run the migrations already."""
    return create_app(load_settings(), migrate_on_start=False)
