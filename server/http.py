"""Helpers shared by the API and the pages: bodies, queries, the signed-in person and CSRF.

Sign-in state lives in Starlette's signed session cookie (``person_id`` and a CSRF token).
Every unsafe request (POST, PUT, PATCH, DELETE) must carry that CSRF token, in the
``X-CSRF-Token`` header (API) or a ``csrf_token`` form field (pages); ``csrf_protected`` wraps
such endpoints so none can forget.
"""

from __future__ import annotations

import functools
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.errors import FieldError, Forbidden, InvalidInput, PayloadTooLarge
from server.schemas import parse
from server.storage.db import Database
from server.storage.models import Person

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]

MAX_JSON_BYTES = 1024 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def db_of(request: Request) -> Database:
    return request.app.state.db


async def read_bytes(request: Request, limit: int) -> bytes:
    """The request body, refused once it passes ``limit`` bytes (without reading the rest)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise InvalidInput(
            f"duplicate key(s) {', '.join(duplicates)}", [FieldError(k, "duplicate key") for k in duplicates]
        )
    return dict(pairs)


def loads_strict(raw: bytes) -> Any:
    """Parse JSON, refusing duplicate keys.

    Raises:
        InvalidInput: not JSON, or a key appears twice in one object.
    """
    try:
        return json.loads(raw or b"null", object_pairs_hook=_no_duplicate_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput.field("body", f"is not valid JSON ({exc})") from None


async def read_body(request: Request, model: type[M]) -> M:
    """Validate a JSON request body into ``model``."""
    data = loads_strict(await read_bytes(request, MAX_JSON_BYTES))
    if not isinstance(data, dict):
        raise InvalidInput.field("body", "must be a JSON object")
    return parse(model, data)


def read_query(request: Request, model: type[M]) -> M:
    """Validate query parameters into ``model``; empty values (from blank form fields) are ignored."""
    return parse(model, {k: v for k, v in request.query_params.items() if v != ""})


def json_response(value: BaseModel | list[BaseModel] | dict[str, Any], status_code: int = 200) -> JSONResponse:
    if isinstance(value, BaseModel):
        content: Any = value.model_dump(mode="json")
    elif isinstance(value, list):
        content = [item.model_dump(mode="json") for item in value]
    else:
        content = value
    return JSONResponse(content, status_code=status_code)


# Sign-in state ------------------------------------------------------------------------------------


def _load_person(db: Any, person_id: int) -> Person | None:
    return db.get(Person, person_id)


async def current_person(request: Request) -> Person | None:
    """The signed-in person, or ``None`` (also when their account was deleted meanwhile)."""
    if "person" in request.scope.get("state", {}):
        return request.state.person
    person_id = request.session.get("person_id")
    person = await db_of(request).read(_load_person, person_id) if isinstance(person_id, int) else None
    request.state.person = person
    return person


def sign_in(request: Request, person: Person) -> None:
    request.session.clear()
    request.session["person_id"] = person.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.state.person = person


def sign_out(request: Request) -> None:
    request.session.clear()
    request.state.person = None


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser session, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request whose CSRF token is missing or wrong.

    Raises:
        Forbidden: with code ``csrf``.
    """
    expected = request.session.get("csrf")
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    if not (isinstance(expected, str) and supplied and hmac.compare_digest(expected, supplied)):
        error = Forbidden("missing or wrong CSRF token; reload the page and try again")
        error.code = "csrf"
        raise error


def csrf_protected(endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint so that its unsafe methods require the CSRF token."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        if request.method in UNSAFE_METHODS:
            await check_csrf(request)
        return await endpoint(request)

    return wrapper


async def authenticate(request: Request, email: str, password: str) -> Person:
    """Check a password, counting failures per account and address.

    Raises:
        TooManyRequests: too many recent failures for this account from this address.
        NotSignedIn: wrong email or password.
    """
    from server import accounts
    from server.errors import NotSignedIn

    limiter = request.app.state.signin_limiter
    key = (request.client.host if request.client else "?", email.strip().lower())
    await limiter.check(key)
    try:
        person = await db_of(request).write(accounts.authenticate, email, password)
    except NotSignedIn:
        await limiter.failed(key)
        raise
    await limiter.succeeded(key)
    return person
