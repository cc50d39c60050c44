"""The knowledge café's harvest over HTTP: every table's key insights and notes, as JSON or Markdown.

Kept apart from ``server/api.py`` (which lists these endpoints with its own) so that the café's HTTP
surface reads in one place.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server import programme
from server.errors import InvalidInput, NotSignedIn
from server.http import current_person, db_of, read_query
from server.openapi import operation
from server.rooms import cafe
from server.schemas import Request as QueryModel


class HarvestQuery(QueryModel):
    """``?format=json`` (default) or ``markdown``."""

    format: Literal["json", "markdown"] = "json"


@operation(
    "GET",
    "/api/sessions/{session_id:int}/cafe/harvest",
    "A knowledge café's harvest: each table's topic, host, people per round, key insights and notes",
    "cafes",
    query=HarvestQuery,
    auth="signed_in",
    response_media="application/json",
    errors=(401, 404, 422),
)
async def cafe_harvest(request: Request) -> Response:
    if await current_person(request) is None:
        raise NotSignedIn("sign in first")
    session_id = int(request.path_params["session_id"])
    query = read_query(request, HarvestQuery)
    db = db_of(request)
    session = await db.read(programme.get_session, session_id)
    if session.type != cafe.CAFE_TYPE:
        raise InvalidInput("this session is not a knowledge café")
    data = await db.read(cafe.harvest, session_id)
    if query.format == "json":
        return JSONResponse(data)
    name = f"session-{session_id}-harvest.md"
    return Response(
        cafe.harvest_markdown(data),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


ENDPOINTS = [cafe_harvest]
