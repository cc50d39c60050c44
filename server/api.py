"""The JSON HTTP API under ``/api``. Each endpoint parses at the edge, then runs domain code in a
worker thread through the database handle; errors are mapped to JSON by ``server.app``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from captioning.engine import SAMPLE_RATE_HZ
from captioning.writers import get_writer
from realtime.room import STAFF
from server import accounts, attendance, cafe_api, importer, programme, transcripts
from server.calendar import to_ics
from server.captions import MAX_AUDIO_BYTES, Speaker, decode_wav
from server.errors import Forbidden, InvalidInput, NotFound, NotSignedIn
from server.http import (
    authenticate,
    csrf_token,
    current_person,
    db_of,
    json_response,
    read_body,
    read_bytes,
    read_query,
    sign_in,
    sign_out,
)
from server.openapi import build_openapi, operation
from server.reports import external, output, privacy
from server.reports.figures import Scope, compute
from server.rooms.store import role_of, transcript
from server.schemas import (
    AttendanceBeacon,
    DeleteAccountRequest,
    ForumCreate,
    ForumPublic,
    ForumUpdate,
    ImportReport,
    InvitationCreate,
    InvitationPublic,
    ProfilePublic,
    ProfileUpdate,
    Programme,
    ProgrammeQuery,
    RegisterRequest,
    ReportQuery,
    SessionCreate,
    SessionPublic,
    SessionUpdate,
    SignInRequest,
    TranscriptQuery,
    TranscriptTrackQuery,
)
from server.schemas import (
    Request as RequestModel,
)
from server.storage.models import Person

ICS = "text/calendar"


def _path_int(request: Request, name: str) -> int:
    return int(request.path_params[name])


async def _organizer(request: Request) -> Person:
    """The signed-in organizer, checked before the body is read (a participant gets 403, not 422)."""
    return accounts.require_organizer(await current_person(request))


async def _signed_in(request: Request) -> Person:
    person = await current_person(request)
    if person is None:
        raise NotSignedIn("sign in first")
    return person


# Health and auth ----------------------------------------------------------------------------------


@operation("GET", "/healthz", "Liveness and database check", "meta", errors=())
async def healthz(request: Request) -> Response:
    from sqlalchemy import text

    await db_of(request).read(lambda db: db.exec(text("SELECT 1")))
    body = {"status": "ok"}
    node = getattr(request.app.state.rooms, "node", None)
    if node is not None:  # with Redis: which process answered (its id among the processes sharing rooms)
        body["node"] = node
    return JSONResponse(body)


@operation("GET", "/api/auth/csrf", "The CSRF token to send as X-CSRF-Token on unsafe requests", "auth", errors=())
async def get_csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": csrf_token(request)})


@operation(
    "POST",
    "/api/auth/register",
    "Create an account and sign in",
    "auth",
    body=RegisterRequest,
    response=ProfilePublic,
    status=201,
    errors=(409, 422),
)
async def register(request: Request) -> Response:
    data = await read_body(request, RegisterRequest)
    db = db_of(request)

    def work(session: Any) -> tuple[Person, ProfilePublic]:
        person = accounts.register(session, data)
        return person, accounts.profile(session, person)

    person, public = await db.write(work)
    sign_in(request, person)
    return json_response(_with_csrf(public, request), 201)


def _with_csrf(public: ProfilePublic, request: Request) -> dict[str, Any]:
    return {**public.model_dump(mode="json"), "csrf_token": csrf_token(request)}


@operation(
    "POST",
    "/api/auth/signin",
    "Sign in with email and password",
    "auth",
    body=SignInRequest,
    response=ProfilePublic,
    errors=(401, 422, 429),
)
async def signin(request: Request) -> Response:
    data = await read_body(request, SignInRequest)

    person = await authenticate(request, data.email, data.password)
    public = await db_of(request).read(accounts.profile, person)
    sign_in(request, person)
    return json_response(_with_csrf(public, request))


@operation("POST", "/api/auth/signout", "Sign out", "auth", status=204, errors=())
async def signout(request: Request) -> Response:
    sign_out(request)
    return Response(status_code=204)


# Me -----------------------------------------------------------------------------------------------


@operation("GET", "/api/me", "My profile", "me", response=ProfilePublic, auth="signed_in", errors=())
@operation("PATCH", "/api/me", "Change my profile", "me", body=ProfileUpdate, response=ProfilePublic, auth="signed_in")
@operation(
    "DELETE", "/api/me", "Delete my account and my data", "me", body=DeleteAccountRequest, status=204, auth="signed_in"
)
async def me(request: Request) -> Response:
    person = await _signed_in(request)
    db = db_of(request)
    if request.method == "GET":
        return json_response(await db.read(accounts.profile, person))
    if request.method == "PATCH":
        data = await read_body(request, ProfileUpdate)

        def update(session: Any) -> ProfilePublic:
            return accounts.profile(session, accounts.update_profile(session, person.id, data))

        return json_response(await db.write(update))
    delete = await read_body(request, DeleteAccountRequest)
    await db.write(accounts.delete_account, person.id, delete.password)
    sign_out(request)
    return Response(status_code=204)


@operation("GET", "/api/me/export", "Everything stored about me, as JSON", "me", auth="signed_in", errors=())
async def export_me(request: Request) -> Response:
    person = await _signed_in(request)
    data = await db_of(request).read(accounts.export_data, person.id)
    return JSONResponse(
        data, headers={"Content-Disposition": f'attachment; filename="forumlive-my-data-{person.id}.json"'}
    )


@operation(
    "GET",
    "/api/me/agenda",
    "Sessions I registered for",
    "me",
    response=SessionPublic,
    response_list=True,
    auth="signed_in",
    errors=(),
)
async def my_agenda(request: Request) -> Response:
    person = await _signed_in(request)
    return json_response(await db_of(request).read(programme.agenda, person.id))


@operation("GET", "/api/me/agenda.ics", "My agenda as iCalendar", "me", response_media=ICS, auth="signed_in", errors=())
async def my_agenda_ics(request: Request) -> Response:
    person = await _signed_in(request)
    sessions = await db_of(request).read(programme.agenda, person.id)
    body = to_ics(sessions, request.app.state.settings.effective_public_url, f"My agenda — {person.name}")
    return Response(body, media_type=ICS, headers={"Content-Disposition": 'attachment; filename="my-agenda.ics"'})


# Forums -------------------------------------------------------------------------------------------


@operation("GET", "/api/forums", "All forum editions", "programme", response=ForumPublic, response_list=True, errors=())
@operation(
    "POST",
    "/api/forums",
    "Create a forum edition",
    "programme",
    body=ForumCreate,
    response=ForumPublic,
    status=201,
    auth="organizer",
    errors=(409, 422),
)
async def forums(request: Request) -> Response:
    db = db_of(request)
    if request.method == "GET":
        rows = await db.read(programme.list_forums)
        return json_response([programme.forum_public(f) for f in rows])
    actor = await _organizer(request)
    data = await read_body(request, ForumCreate)
    forum = await db.write(programme.create_forum, actor, data)
    return json_response(programme.forum_public(forum), 201)


@operation("GET", "/api/forums/{forum_id:int}", "One forum edition", "programme", response=ForumPublic, errors=(404,))
@operation(
    "PATCH",
    "/api/forums/{forum_id:int}",
    "Change a forum edition",
    "programme",
    body=ForumUpdate,
    response=ForumPublic,
    auth="organizer",
    errors=(404, 422),
)
@operation(
    "DELETE",
    "/api/forums/{forum_id:int}",
    "Delete a forum edition and its sessions",
    "programme",
    status=204,
    auth="organizer",
    errors=(404,),
)
async def forum(request: Request) -> Response:
    forum_id = _path_int(request, "forum_id")
    db = db_of(request)
    if request.method == "GET":
        return json_response(programme.forum_public(await db.read(programme.get_forum, forum_id)))
    actor = await _organizer(request)
    if request.method == "PATCH":
        data = await read_body(request, ForumUpdate)
        return json_response(programme.forum_public(await db.write(programme.update_forum, actor, forum_id, data)))
    await db.write(programme.delete_forum, actor, forum_id)
    return Response(status_code=204)


class ImportQuery(RequestModel):
    format: importer.ImportFormat | None = None
    mode: importer.ImportMode = importer.ImportMode.ALL_OR_NOTHING


@operation(
    "POST",
    "/api/forums/{forum_id:int}/import",
    "Import sessions from CSV or JSON (report of rejected rows)",
    "programme",
    query=ImportQuery,
    body_media="text/csv",
    response=ImportReport,
    auth="organizer",
    errors=(404, 413, 422),
)
async def import_programme(request: Request) -> Response:
    forum_id = _path_int(request, "forum_id")
    actor = await _organizer(request)
    query = read_query(request, ImportQuery)
    fmt = query.format
    if fmt is None:
        content_type = request.headers.get("content-type", "")
        if "csv" in content_type:
            fmt = importer.ImportFormat.CSV
        elif "json" in content_type:
            fmt = importer.ImportFormat.JSON
        else:
            raise InvalidInput.field(
                "format", "say format=csv or format=json, or send Content-Type text/csv or application/json"
            )
    content = await read_bytes(request, importer.MAX_IMPORT_BYTES)
    report = await db_of(request).write(importer.import_programme, actor, forum_id, content, fmt, query.mode)
    return json_response(report, 200 if report.written or not report.rejected else 422)


# Sessions -----------------------------------------------------------------------------------------


@operation(
    "GET",
    "/api/sessions",
    "The programme, filtered (current forum unless forum= is given)",
    "programme",
    query=ProgrammeQuery,
    response=Programme,
    errors=(404, 422),
)
@operation(
    "POST",
    "/api/sessions",
    "Add a session to a forum's programme",
    "programme",
    body=SessionCreate,
    response=SessionPublic,
    status=201,
    auth="organizer",
    errors=(404, 409, 422),
)
async def sessions(request: Request) -> Response:
    db = db_of(request)
    if request.method == "GET":
        query = read_query(request, ProgrammeQuery)
        return json_response(await db.read(programme.programme, query))
    actor = await _organizer(request)
    data = await read_body(request, SessionCreate)

    def create(session: Any) -> SessionPublic:
        created = programme.create_session(session, actor, data)
        return programme.to_public(session, [created])[0]

    return json_response(await db.write(create), 201)


@operation("GET", "/api/sessions/{session_id:int}", "One session", "programme", response=SessionPublic, errors=(404,))
@operation(
    "PATCH",
    "/api/sessions/{session_id:int}",
    "Change a session",
    "programme",
    body=SessionUpdate,
    response=SessionPublic,
    auth="organizer",
    errors=(404, 422),
)
@operation(
    "DELETE",
    "/api/sessions/{session_id:int}",
    "Remove a session",
    "programme",
    status=204,
    auth="organizer",
    errors=(404,),
)
async def session_detail(request: Request) -> Response:
    session_id = _path_int(request, "session_id")
    db = db_of(request)
    if request.method == "GET":
        return json_response(await db.read(programme.session_public, session_id))
    actor = await _organizer(request)
    if request.method == "PATCH":
        data = await read_body(request, SessionUpdate)

        def update(session: Any) -> SessionPublic:
            return programme.to_public(session, [programme.update_session(session, actor, session_id, data)])[0]

        return json_response(await db.write(update))
    await db.write(programme.delete_session, actor, session_id)
    return Response(status_code=204)


@operation(
    "GET",
    "/api/sessions/{session_id:int}/calendar.ics",
    "One session as iCalendar",
    "programme",
    response_media=ICS,
    errors=(404,),
)
async def session_ics(request: Request) -> Response:
    session = await db_of(request).read(programme.session_public, _path_int(request, "session_id"))
    body = to_ics([session], request.app.state.settings.effective_public_url, session.title)
    return Response(
        body, media_type=ICS, headers={"Content-Disposition": f'attachment; filename="session-{session.id}.ics"'}
    )


@operation(
    "POST",
    "/api/sessions/{session_id:int}/registration",
    "Add a session to my agenda",
    "me",
    status=204,
    auth="signed_in",
    errors=(404, 409),
)
@operation(
    "DELETE",
    "/api/sessions/{session_id:int}/registration",
    "Remove a session from my agenda",
    "me",
    status=204,
    auth="signed_in",
    errors=(404,),
)
async def registration(request: Request) -> Response:
    person = await _signed_in(request)
    session_id = _path_int(request, "session_id")
    db = db_of(request)
    if request.method == "POST":
        await db.write(programme.register_for_session, person, session_id)
    else:
        await db.write(programme.unregister_from_session, person, session_id)
    return Response(status_code=204)


# Invitations --------------------------------------------------------------------------------------


@operation(
    "POST",
    "/api/sessions/{session_id:int}/invitations",
    "Create a speaker, moderator or captioner invitation link",
    "people",
    body=InvitationCreate,
    response=InvitationPublic,
    status=201,
    auth="organizer",
    errors=(404, 422),
)
async def invitations(request: Request) -> Response:
    session_id = _path_int(request, "session_id")
    actor = await _organizer(request)
    data = await read_body(request, InvitationCreate)
    settings = request.app.state.settings
    ttl = timedelta(hours=data.expires_in_hours or settings.invitation_ttl_h)
    token, invitation = await db_of(request).write(accounts.create_invitation, actor, session_id, data.role, ttl)
    public = InvitationPublic(
        url=f"{settings.effective_public_url}/invitations/{token}",
        token=token,
        session_id=session_id,
        role=data.role,
        expires_at=invitation.expires_at,
    )
    return json_response(public, 201)


@operation("GET", "/api/invitations/{token}", "What an invitation offers", "people", errors=(404, 409, 410))
async def invitation(request: Request) -> Response:
    token = request.path_params["token"]

    def look(session: Any) -> dict[str, Any]:
        found, target = accounts.find_invitation(session, token)
        return {
            "session_id": target.id,
            "session_title": target.title,
            "role": found.role,
            "expires_at": found.expires_at.isoformat(),
        }

    return JSONResponse(await db_of(request).read(look))


@operation(
    "POST",
    "/api/invitations/{token}/accept",
    "Accept an invitation (take its role)",
    "people",
    auth="signed_in",
    errors=(404, 409, 410),
)
async def accept_invitation(request: Request) -> Response:
    person = await current_person(request)
    role = await db_of(request).write(accounts.accept_invitation, person, request.path_params["token"])
    return JSONResponse({"session_id": role.session_id, "role": role.role})


# Captions ---------------------------------------------------------------------------------------------


class PlayQuery(RequestModel):
    speed: Annotated[float, Field(ge=0.5, le=20.0)] = 1.0
    speaker: Annotated[str, Field(min_length=1, max_length=200)] = "Pre-recorded talk"


@operation(
    "POST",
    "/api/sessions/{session_id:int}/captions/play",
    "Caption a pre-recorded talk (16-bit PCM WAV) live into the session's room",
    "captions",
    query=PlayQuery,
    body_media="audio/wav",
    status=202,
    auth="organizer",
    errors=(404, 413, 422),
)
async def play_captions(request: Request) -> Response:
    session_id = _path_int(request, "session_id")
    person = await _signed_in(request)
    db = db_of(request)
    session = await db.read(programme.session_public, session_id)
    role = await db.read(role_of, person, session_id)
    if role not in STAFF:
        raise Forbidden("only the session's moderators and organizers may play audio into it")
    query = read_query(request, PlayQuery)
    audio = decode_wav(await read_bytes(request, MAX_AUDIO_BYTES))
    speaker = Speaker(None, query.speaker, "machine", session.language)
    request.app.state.captions.play(session_id, audio, speaker, query.speed)
    return JSONResponse(
        {"session_id": session_id, "duration_s": round(len(audio) / SAMPLE_RATE_HZ, 2)}, status_code=202
    )


@operation(
    "GET",
    "/api/sessions/{session_id:int}/transcript",
    "The session's final captions of one track (track: machine, translation, human)",
    "captions",
    query=TranscriptTrackQuery,
    errors=(404, 422),
)
async def session_transcript(request: Request) -> Response:
    session_id = _path_int(request, "session_id")
    track = read_query(request, TranscriptTrackQuery).track.value
    db = db_of(request)
    await db.read(programme.get_session, session_id)
    captions = await db.read(transcript, session_id, track)
    return JSONResponse({"session_id": session_id, "track": track, "captions": captions})


@operation(
    "GET",
    "/api/sessions/{session_id:int}/transcript.{fmt}",
    "The transcript of one track as WebVTT, SRT or plain text (fmt: vtt, srt, txt)",
    "captions",
    query=TranscriptTrackQuery,
    response_media="text/vtt",
    errors=(404, 422),
)
async def session_transcript_file(request: Request) -> Response:
    session_id = _path_int(request, "session_id")
    track = read_query(request, TranscriptTrackQuery).track.value
    try:
        writer = get_writer(request.path_params["fmt"])
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    db = db_of(request)
    await db.read(programme.get_session, session_id)
    # Files use the session's clock: seconds since the first caption began, across speakers.
    cues = [
        SimpleNamespace(
            start_s=c["offset_s"], end_s=c["offset_s"] + c["end_s"] - c["start_s"], text=c["text"], speaker=c["speaker"]
        )
        for c in await db.read(transcript, session_id, track)
    ]
    body = writer.write(cues)
    suffix = "" if track == "machine" else f"-{track}"
    name = f"session-{session_id}-transcript{suffix}.{writer.extension}"
    return Response(
        body, media_type=writer.media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@operation(
    "GET",
    "/api/transcripts/search",
    "Captions containing some text, across the forum's sessions (newest sessions first)",
    "captions",
    query=TranscriptQuery,
    errors=(422,),
)
async def transcript_search(request: Request) -> Response:
    query = read_query(request, TranscriptQuery)
    hits = await db_of(request).read(transcripts.search, query.q, query.forum, query.limit)
    return JSONResponse({"query": query.q, "hits": [hit.as_dict() for hit in hits]})


@operation(
    "GET",
    "/api/captions/status",
    "Live caption streams: lag behind the speech, real-time factor, turns taken (organizers)",
    "captions",
    errors=(401, 403),
)
async def captions_status(request: Request) -> Response:
    await _organizer(request)
    captions = request.app.state.captions
    return JSONResponse(
        {
            "engine": captions.engine_name,
            "model": captions.model,
            "workers": captions.workers,
            "batch": captions.batch,
            "streams": captions.status(),
        }
    )


async def _report(request: Request) -> tuple[dict[str, Any], ReportQuery]:
    """The key figures a request asks for: published, or raw for organizers (``raw=true``)."""
    query = read_query(request, ReportQuery)
    if query.raw:
        await _organizer(request)
    figures = await db_of(request).read(compute, query.scope(_path_int(request, "forum_id")))
    return (figures.as_dict() if query.raw else privacy.publish(figures)), query


@operation(
    "GET",
    "/api/forums/{forum_id:int}/report",
    "Key figures of a forum (published: small cells hidden; raw=true for organizers)",
    "reports",
    query=ReportQuery,
    errors=(401, 403, 404, 422),
)
async def forum_report(request: Request) -> Response:
    figures, _ = await _report(request)
    return JSONResponse(figures)


@operation(
    "GET",
    "/api/forums/{forum_id:int}/report.csv",
    "Key figures as CSV (section, item, value)",
    "reports",
    query=ReportQuery,
    response_media="text/csv",
    errors=(401, 403, 404, 422),
)
async def forum_report_csv(request: Request) -> Response:
    figures, _ = await _report(request)
    name = f"forum-{_path_int(request, 'forum_id')}-key-figures.csv"
    return Response(
        output.to_csv(figures),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _forum_sessions(db: Any, forum_id: int, session_ids: list[int]) -> dict[int, tuple[str, str]]:  # noqa: ANN401
    """Title and status of those of ``session_ids`` that belong to the forum."""
    from sqlmodel import col, select

    from server.storage.models import Session as SessionRow

    if not session_ids:
        return {}
    rows = db.exec(
        select(SessionRow.id, SessionRow.title, SessionRow.status).where(
            SessionRow.forum_id == forum_id, col(SessionRow.id).in_(session_ids)
        )
    ).all()
    return {int(sid): (title, status) for sid, title, status in rows}


@operation(
    "GET",
    "/api/forums/{forum_id:int}/live",
    "Organizers' live dashboard: sessions live now with people present, and today's figures so far",
    "reports",
    errors=(401, 403, 404),
)
async def forum_live(request: Request) -> Response:
    await _organizer(request)
    forum_id = _path_int(request, "forum_id")
    db = db_of(request)
    forum = await db.read(programme.get_forum, forum_id)
    today = datetime.now(ZoneInfo(forum.timezone)).date()
    figures = await db.read(compute, Scope(forum_id, today, today))
    service = request.app.state.rooms
    present = {sid: service.present(live) for sid, live in list(service.rooms.items())}
    today_rows = {row.id: row for row in figures.per_session}
    # Rooms this process holds, and today's sessions (a live session nobody has opened yet shows with 0).
    sessions = await db.read(_forum_sessions, forum_id, sorted(set(present) | set(today_rows)))
    live = [
        {
            "id": sid,
            "title": title,
            "present": present.get(sid, 0),
            "attendees_today": today_rows[sid].attendees if sid in today_rows else None,
            "peak": today_rows[sid].peak_concurrent if sid in today_rows else None,
        }
        for sid, (title, status) in sessions.items()
        if present.get(sid) or status == "live"
    ]
    live.sort(key=lambda r: -r["present"])
    return JSONResponse(
        {
            "forum": forum.name,
            "day": today.isoformat(),
            "present_now": sum(r["present"] for r in live),
            "sessions_live": live,
            "today": {
                "sessions": figures.sessions,
                "attendance": figures.cumulative_attendance,
                "unique_participants": figures.unique_participants,
                "countries_engaged": figures.countries_engaged,
            },
        }
    )


@operation(
    "POST",
    "/api/forums/{forum_id:int}/external-views",
    "Import views counted on other platforms (CSV: session_code, platform, views); all rows or none",
    "reports",
    body_media="text/csv",
    auth="organizer",
    errors=(404, 413, 422),
)
async def import_external_views(request: Request) -> Response:
    await _organizer(request)
    content = await read_bytes(request, importer.MAX_IMPORT_BYTES)
    report = await db_of(request).write(external.import_views, _path_int(request, "forum_id"), content)
    return JSONResponse({"rows": report.rows, "written": report.written})


@operation(
    "POST",
    "/api/sessions/{session_id:int}/attendance",
    "Report a visit from a page other than the live room (lite, recording, transcript): join, heartbeat, leave",
    "reports",
    body=AttendanceBeacon,
    errors=(401, 404, 422),
)
async def attendance_beacon(request: Request) -> Response:
    session_id = _path_int(request, "session_id")
    person = await current_person(request)
    data = await read_body(request, AttendanceBeacon)
    if person is None and data.anonymous_key is None:
        raise NotSignedIn("sign in, or send the anonymous_key this page keeps")
    if data.event != "join" and data.visit_id is None:
        raise InvalidInput.field("visit_id", "is needed for a heartbeat or a leave")
    db = db_of(request)
    await db.read(programme.get_session, session_id)
    visit_id = await db.write(
        attendance.beacon,
        session_id,
        person.id if person is not None else None,
        None if person is not None else data.anonymous_key,
        data.channel,
        data.event,
        data.visit_id,
        datetime.now(UTC),
    )
    if visit_id is None:
        raise NotFound("no such visit of yours in this session")
    return JSONResponse({"visit_id": visit_id})


ENDPOINTS = [
    healthz,
    get_csrf,
    register,
    signin,
    signout,
    me,
    export_me,
    my_agenda,
    my_agenda_ics,
    forums,
    forum,
    import_programme,
    sessions,
    session_detail,
    session_ics,
    registration,
    invitations,
    invitation,
    accept_invitation,
    play_captions,
    session_transcript,
    transcript_search,
    captions_status,
    forum_report,
    forum_report_csv,
    forum_live,
    import_external_views,
    attendance_beacon,
    session_transcript_file,
    *cafe_api.ENDPOINTS,
]


async def openapi_document(request: Request) -> Response:
    return JSONResponse(build_openapi(ENDPOINTS, request.app.state.settings.effective_public_url))


def routes() -> list:  # type: ignore[type-arg]
    from server.openapi import routes_for

    return routes_for(ENDPOINTS)
